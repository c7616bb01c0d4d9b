"""reidkit.memory."""
