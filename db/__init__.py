"""The catalogue's schema: numbered SQL migrations, applied once each by `curator.storage`."""
