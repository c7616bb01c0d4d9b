"""reidkit.methods."""
