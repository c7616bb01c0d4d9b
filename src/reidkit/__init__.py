"""reidkit: re-identification and retrieval with limited data."""

__version__ = "0.1.0"
