"""vam.media."""
