"""vam.ingest."""
