"""reidkit.models."""
