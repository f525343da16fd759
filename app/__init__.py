"""The Streamlit review app; pages read and write only through the curator library."""
