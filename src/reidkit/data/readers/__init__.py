"""reidkit.data.readers."""
