"""reidkit.evaluation: distances, CMC/mAP/mINP, Recall@K, centroid protocols, k-reciprocal re-ranking."""

from reidkit.evaluation.centroids import camera_aware_centroid_distances, centroid_gallery
from reidkit.evaluation.distance import paired_distance, pairwise_distance
from reidkit.evaluation.evaluate import evaluate, text_to_image_metrics, unique_images
from reidkit.evaluation.metrics import QueryStats, query_stats, rank_metrics, recall_at_k, report_from_stats
from reidkit.evaluation.rerank import cross_modal_rerank, k_reciprocal_rerank

__all__ = [
    "QueryStats",
    "camera_aware_centroid_distances",
    "centroid_gallery",
    "cross_modal_rerank",
    "evaluate",
    "k_reciprocal_rerank",
    "paired_distance",
    "pairwise_distance",
    "query_stats",
    "rank_metrics",
    "recall_at_k",
    "report_from_stats",
    "text_to_image_metrics",
    "unique_images",
]
