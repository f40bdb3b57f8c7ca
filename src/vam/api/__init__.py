"""vam.api."""
