"""reidkit.serve."""
