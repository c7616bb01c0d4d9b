"""reidkit.index."""
