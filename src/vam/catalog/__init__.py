"""vam.catalog."""
