"""vam.lifecycle."""
