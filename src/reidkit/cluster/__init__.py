"""reidkit.cluster: distances and labels for unsupervised re-identification."""

from reidkit.cluster.jaccard import jaccard_distance

__all__ = ["jaccard_distance"]
