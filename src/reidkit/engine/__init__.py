"""reidkit.engine."""
