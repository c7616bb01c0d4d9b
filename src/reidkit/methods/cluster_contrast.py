"""Unsupervised ReID: Cluster-Contrast (Dai et al. 2021), optionally with Implicit Sample Extension (ISE,
Zhang et al., CVPR 2022).

Every epoch: extract all training features, k-reciprocal Jaccard distance, DBSCAN -> pseudo-labels (outliers
sit the epoch out), memory <- L2-normalised cluster means. Every step: InfoNCE of the L2-normalised `bn_feat`
(the reference's pooled, BN'd, normalised feature) against all centroids; with ISE, support samples join the
InfoNCE as positives of their cluster and beta * label-preserving loss is added. The memory is updated with
momentum after the optimiser step. True pids are used only to log ARI/NMI of the pseudo-labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reidkit.cluster.ise import SCHEDULES, lambda_schedule, support_samples
from reidkit.cluster.pseudo_labels import pseudo_labels
from reidkit.config import ConfigError, ModelConfig
from reidkit.engine import distributed
from reidkit.losses.cluster import info_nce, label_preserving
from reidkit.memory.cluster_memory import UPDATES, ClusterMemory
from reidkit.methods.base import BuildInputs, Method, constructor_kwargs
from reidkit.models.embedder import ImageEmbedder
from reidkit.models.model import ReIDModel, reid_model_from
from reidkit.types import Batch, Embedder, EpochContext, Features, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterContrastConfig:
    """Cluster-Contrast (+ ISE) hyper-parameters; defaults from the papers' Market-1501 settings."""

    name: str = "cluster_contrast"
    eps: float = 0.6  # DBSCAN radius on the Jaccard distance (0.4 in the ISE Market recipe)
    min_samples: int = 4
    k1: int = 30  # k-reciprocal neighbours of the Jaccard distance
    k2: int = 6  # query expansion of the Jaccard distance
    temperature: float = 0.05  # InfoNCE against the cluster memory
    momentum: float = 0.2  # memory: c <- m c + (1 - m) f
    # hard: per cluster, its least similar batch sample (CC's cm_hard option; ISE's Market recipe) | mean: per
    # cluster, the batch mean (ours) | sequential: every batch sample in order (CC's default `cm`; ISE MSMT17)
    memory_update: str = "hard"
    ise: bool = False  # Implicit Sample Extension
    ise_k: int = 1  # nearest other clusters per sample (one support each)
    lambda0: float = 1.0  # final degree lambda_T = lambda0 / 2
    lambda_schedule: str = "log"  # log (reference code) | linear
    lp_temperature: float = 0.6  # label-preserving loss
    lp_weight: float = 0.1  # beta
    update_with_supports: bool = True  # the reference updates the memory with the support samples too

    def __post_init__(self) -> None:
        if self.memory_update not in UPDATES:
            raise ConfigError(f"method.memory_update: {self.memory_update!r}; valid: {list(UPDATES)}")


class ClusterContrast(Method):
    """Cluster-Contrast (+ ISE). `model` must have no classifier (num_classes=0): no labels are known.

    `steps_per_epoch` (the optimiser steps of one epoch, e.g. optim.iters_per_epoch) sets the within-epoch
    progress of lambda_t; 0 takes the number of steps the previous epoch ran.
    """

    progress: torch.Tensor

    def __init__(
        self,
        model: ReIDModel,
        *,
        eps: float = ClusterContrastConfig.eps,
        min_samples: int = ClusterContrastConfig.min_samples,
        k1: int = ClusterContrastConfig.k1,
        k2: int = ClusterContrastConfig.k2,
        temperature: float = ClusterContrastConfig.temperature,
        momentum: float = ClusterContrastConfig.momentum,
        memory_update: str = ClusterContrastConfig.memory_update,
        ise: bool = ClusterContrastConfig.ise,
        ise_k: int = ClusterContrastConfig.ise_k,
        lambda0: float = ClusterContrastConfig.lambda0,
        lambda_schedule: str = ClusterContrastConfig.lambda_schedule,
        lp_temperature: float = ClusterContrastConfig.lp_temperature,
        lp_weight: float = ClusterContrastConfig.lp_weight,
        update_with_supports: bool = ClusterContrastConfig.update_with_supports,
        steps_per_epoch: int = 0,
    ) -> None:
        super().__init__()
        if getattr(getattr(model, "head", None), "classifier", None) is not None:
            raise ValueError(
                "ClusterContrast: build the model with num_classes=0 (unsupervised: no classifier)"
            )
        if lambda_schedule not in SCHEDULES:
            raise ValueError(
                f"ClusterContrast: lambda_schedule {lambda_schedule!r} unknown; valid: {list(SCHEDULES)}"
            )
        if memory_update not in UPDATES:
            raise ValueError(
                f"ClusterContrast: memory_update {memory_update!r} unknown; valid: {list(UPDATES)}"
            )
        for name, v in (("temperature", temperature), ("lp_temperature", lp_temperature), ("eps", eps)):
            if v <= 0:
                raise ValueError(f"ClusterContrast: {name} must be > 0, got {v}")
        if min(min_samples, k1, k2, ise_k) < 1 or steps_per_epoch < 0:
            raise ValueError(
                "ClusterContrast: min_samples, k1, k2, ise_k must be >= 1 and steps_per_epoch >= 0"
            )
        self.model = model
        self.memory = ClusterMemory(model.dim, momentum=momentum, update=memory_update)
        self.eps, self.min_samples, self.k1, self.k2 = eps, min_samples, k1, k2
        self.temperature, self.ise, self.ise_k = temperature, ise, ise_k
        self.lambda0, self.schedule = lambda0, lambda_schedule
        self.lp_temperature, self.lp_weight = lp_temperature, lp_weight
        self.update_with_supports, self.steps_per_epoch = update_with_supports, steps_per_epoch
        # [epoch, epochs, steps done in this epoch, steps of the previous epoch]: checkpointed for resumes
        self.register_buffer("progress", torch.zeros(4, dtype=torch.long))
        self._stats: dict[str, float] = {}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    # ------------------------------------------------------------------------------------------- schedule
    def training_progress(self) -> float:
        """t / T in [0, 1]: finished epochs plus the fraction of the current one, over all epochs."""
        epoch, epochs, step, last = self.progress.tolist()
        per_epoch = self.steps_per_epoch or last
        frac = min(step / per_epoch, 1.0) if per_epoch > 0 else 0.0
        return min((epoch + frac) / epochs, 1.0) if epochs > 0 else 0.0

    def current_lambda(self) -> float:
        """ISE's interpolation degree lambda_t at the current training progress."""
        return lambda_schedule(self.training_progress(), self.lambda0, self.schedule)

    # ------------------------------------------------------------------------------------------- clustering
    def on_epoch_start(self, ctx: EpochContext) -> Sequence[Record] | None:
        """Re-cluster all training images; returns the pseudo-labelled records (outliers left out)."""
        from reidkit.cluster.jaccard import jaccard_distance

        if ctx.extract is None:
            raise ValueError(
                "ClusterContrast.on_epoch_start: the EpochContext needs `extract` (features of records)"
            )
        records = list(ctx.records)
        feats = _in_record_order(ctx.extract(records), len(records))  # [N, D], all ranks' features
        res = None
        if distributed.is_main():  # cluster once; every rank trains on rank 0's pseudo-labels
            dist = jaccard_distance(feats, k1=self.k1, k2=self.k2)  # [N, N] sparse
            pids = np.asarray([r.pid for r in records])
            true = pids if len(pids) and (pids >= 0).all() else None  # logging only, never training
            res = pseudo_labels(
                feats, dist, records, eps=self.eps, min_samples=self.min_samples, true_pids=true
            )
        res = distributed.broadcast_object(res)
        if not res.records:
            raise RuntimeError(
                f"epoch {ctx.epoch}: DBSCAN (eps={self.eps}, min_samples={self.min_samples}) put all "
                f"{len(records)} training images in outliers; raise method.eps or lower method.min_samples"
            )
        self.memory.reset(torch.from_numpy(res.centroids))
        with torch.no_grad():
            done = int(self.progress[2])
            self.progress.copy_(torch.tensor([ctx.epoch, ctx.epochs, 0, done or int(self.progress[3])]))
        self._stats = {k: float(v) for k, v in res.stats.items()}
        if self.ise:
            self._stats["lambda_start"] = self.current_lambda()
        log.info(
            "epoch %d clustering: %s", ctx.epoch + 1, " ".join(f"{k}={v:.4g}" for k, v in self._stats.items())
        )
        return res.records

    def epoch_stats(self) -> dict[str, float]:
        """Clusters, outliers, ARI/NMI (when true labels exist) of the epoch's pseudo-labels; lambda_t."""
        out = dict(self._stats)
        if self.ise:
            out["lambda_t"] = self.current_lambda()
        return out

    # ------------------------------------------------------------------------------------------- training
    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if len(self.memory) == 0:
            raise RuntimeError("ClusterContrast: the cluster memory is empty; on_epoch_start must run first")
        feats = F.normalize(self.model(batch.images)["bn_feat"].float(), dim=1)  # [B, D]
        labels = batch.pids  # [B] pseudo-labels
        cents = self.memory.centroids()  # [C, D] detached copy
        parts: dict[str, torch.Tensor] = {}
        upd_f, upd_l = feats, labels
        with torch.autocast(feats.device.type, enabled=False):  # similarities / 0.05: keep them in fp32
            if self.ise:
                lam = self.current_lambda()
                sup, sup_l = support_samples(feats, labels, cents, lam, self.ise_k)  # [B * k, D], [B * k]
                all_f, all_l = torch.cat([feats, sup]), torch.cat([labels, sup_l])  # [B (1 + k), D]
                contrastive = info_nce(all_f, all_l, cents, self.temperature)
                lp = label_preserving(feats, labels, sup, sup_l, self.lp_temperature)
                loss = contrastive + self.lp_weight * lp
                parts = {"lp": lp.detach(), "lambda": torch.tensor(lam)}
                if self.update_with_supports:
                    upd_f, upd_l = all_f, all_l
            else:
                contrastive = info_nce(feats, labels, cents, self.temperature)
                loss = contrastive
        return {
            "loss": loss,
            "contrastive": contrastive.detach(),
            **parts,
            "_feats": upd_f.detach(),
            "_labels": upd_l.detach(),
        }

    def after_optimizer_step(self, batch: Batch, out: dict[str, torch.Tensor]) -> None:
        """Momentum update of the memory with this step's (detached) features, then count the step."""
        with torch.no_grad():  # every rank updates with the features of all ranks: the memories stay equal
            feats, labels = (
                distributed.all_gather_cat(out["_feats"]),
                distributed.all_gather_cat(out["_labels"]),
            )
            self.memory.update(feats, labels)
            self.progress[2] += 1

    def embedders(self) -> dict[str, Embedder]:
        return {"image": ImageEmbedder(self.model, self.model.dim, key="bn_feat")}


def _in_record_order(feats: Features, n: int) -> np.ndarray:
    """Features [N, D] reordered so row i belongs to record i (checks every record was extracted once)."""
    index = np.asarray(feats.index)
    if len(feats) != n or not np.array_equal(np.sort(index), np.arange(n)):
        raise ValueError(
            f"extract returned {len(feats)} features whose index is not a permutation of 0..{n - 1}"
        )
    out = np.empty_like(feats.feats)
    out[index] = feats.feats
    return out


def build(config: ClusterContrastConfig, model: ModelConfig, inputs: BuildInputs) -> ClusterContrast:
    """Cluster-Contrast (+ ISE) around a ReIDModel without a classifier (no labels are known)."""
    body = reid_model_from(model, 0, inputs.weights)
    kwargs = constructor_kwargs(ClusterContrast, config)
    return ClusterContrast(body, steps_per_epoch=inputs.steps_per_epoch, **kwargs)
