"""reidkit.data."""
