"""vam.storage."""
