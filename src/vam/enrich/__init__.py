"""vam.enrich."""
