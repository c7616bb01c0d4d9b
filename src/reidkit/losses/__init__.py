"""reidkit.losses."""
