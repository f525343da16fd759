"""The catalogue's audio side: ingest, decoding, segment choice, metadata import and export."""
