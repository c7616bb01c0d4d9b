"""reidkit.evaluation."""
