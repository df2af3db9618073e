"""k-nearest-neighbour probe of frozen features: no training, cosine similarity to a feature bank.

The vote follows DINO's k-NN evaluation (Caron et al., "Emerging Properties in
Self-Supervised Vision Transformers", ICCV 2021; facebookresearch/dino ``eval_knn.py``): the k
most similar bank features (cosine similarity of L2-normalised features) vote for their label
with weight ``exp(sim / T)``; ``temperature=None`` gives a plain majority vote. MSM reports an
"NN" protocol without its details (k, bank), so this is geo3d's choice, not MSM's code.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from geo3d.structures import PointBatch

from .linear_probe import predictions_on_points


@torch.no_grad()
def knn_topk(query: Tensor, bank: Tensor, k: int, query_chunk: int = 1024,
             bank_chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """The k largest inner products of every query with the bank, chunked on both sides.

    Args:
        query: (Q, C); bank: (M, C) (normalise both first for cosine similarity).
        k: neighbours (clipped to M).

    Returns:
        sims (Q, k') float and indices (Q, k') int64 into the bank, most similar first,
        ``k' = min(k, M)``.
    """
    if bank.shape[0] == 0:
        raise ValueError('the feature bank is empty')
    k = min(k, bank.shape[0])
    sims_out, idx_out = [], []
    for qs in range(0, query.shape[0], query_chunk):
        q = query[qs:qs + query_chunk]
        best_s = q.new_full((q.shape[0], 0), 0.0)
        best_i = torch.zeros((q.shape[0], 0), dtype=torch.long, device=q.device)
        for bs in range(0, bank.shape[0], bank_chunk):
            sims = q @ bank[bs:bs + bank_chunk].to(q.dtype).T            # (q, b)
            s, i = sims.topk(min(k, sims.shape[1]), dim=1)
            best_s = torch.cat([best_s, s], 1)
            best_i = torch.cat([best_i, i + bs], 1)
            if best_s.shape[1] > k:
                best_s, j = best_s.topk(k, dim=1)
                best_i = best_i.gather(1, j)
        sims_out.append(best_s)
        idx_out.append(best_i)
    return torch.cat(sims_out), torch.cat(idx_out)


@torch.no_grad()
def knn_classify(query: Tensor, bank: Tensor, bank_label: Tensor, num_classes: int, k: int = 20,
                 temperature: float | None = 0.07, query_chunk: int = 1024,
                 bank_chunk: int = 65536, bank_normalized: bool = False) -> Tensor:
    """Labels of the queries by a k-NN vote in cosine similarity.

    Args:
        query: (Q, C) features; bank: (M, C) features; bank_label: (M,) labels in [0, K).
        num_classes: K.
        k: neighbours.
        temperature: vote weight ``exp(sim / T)``; None = one vote per neighbour.
        bank_normalized: the bank rows are unit vectors already (kept in their dtype, e.g.
            float16, and converted chunk by chunk) instead of being normalised here.

    Returns:
        (Q,) int64 predicted labels (ties go to the smaller label).
    """
    q = F.normalize(query.float(), dim=1)
    b = bank if bank_normalized else F.normalize(bank.float(), dim=1)
    sims, idx = knn_topk(q, b, k, query_chunk, bank_chunk)
    labels = bank_label.to(idx.device).long()[idx]                        # (Q, k)
    weights = torch.ones_like(sims) if temperature is None else torch.exp(sims / temperature)
    votes = sims.new_zeros(q.shape[0], num_classes).scatter_add_(1, labels, weights)
    return votes.argmax(1)


def subsample_rows(label: Tensor, max_points: int, class_balanced: bool = False,
                   ignore_index: int = -1, generator: torch.Generator | None = None) -> Tensor:
    """Up to ``max_points`` random rows with a valid label (class-balanced: an equal quota per
    present class, leftover quota unused).

    Args:
        label: (N,) labels.

    Returns:
        (n,) int64 row indices, n <= max_points.
    """
    valid = torch.nonzero(label.cpu() != ignore_index).squeeze(1)
    if not class_balanced:
        perm = torch.randperm(valid.numel(), generator=generator)[:max_points]
        return valid[perm]
    lab = label.cpu()[valid]
    classes = torch.unique(lab)
    if classes.numel() == 0:
        return valid
    quota = max(max_points // classes.numel(), 1)
    picks = []
    for c in classes.tolist():
        rows = valid[lab == c]
        picks.append(rows[torch.randperm(rows.numel(), generator=generator)[:quota]])
    return torch.cat(picks)[:max_points]


class KNNProbe:
    """Feature bank of labelled training voxels + k-NN classification of validation scenes.

    Args:
        extractor: PointBatch -> (N, C) per-row features (e.g. a
            :class:`~geo3d.models.probes.FrozenFeatureExtractor`).
        num_classes: K.
        k: neighbours (default 20).
        temperature: ``exp(sim / T)`` vote weights (DINO's 0.07); None = majority vote.
        bank_points_per_scene: labelled rows kept per training scene.
        class_balanced: an equal share of those rows per class present in the scene.
        ignore_index: label left out of the bank and the metric.
        seed: seed of the subsampling.
        bank_dtype: storage dtype of the bank (float16 halves its memory).
    """

    def __init__(self, extractor: Callable[[PointBatch], Tensor], num_classes: int, k: int = 20,
                 temperature: float | None = 0.07, bank_points_per_scene: int = 1000,
                 class_balanced: bool = False, ignore_index: int = -1, seed: int = 0,
                 bank_dtype: torch.dtype = torch.float32) -> None:
        if k < 1:
            raise ValueError(f'k must be >= 1, got {k}')
        self.extractor = extractor
        self.num_classes = num_classes
        self.k = k
        self.temperature = temperature
        self.bank_points_per_scene = bank_points_per_scene
        self.class_balanced = class_balanced
        self.ignore_index = ignore_index
        self.bank_dtype = bank_dtype
        self.generator = torch.Generator().manual_seed(seed)
        self._feats: list[Tensor] = []
        self._labels: list[Tensor] = []

    @property
    def bank_size(self) -> int:
        return sum(int(x.shape[0]) for x in self._labels)

    @torch.no_grad()
    def add(self, batch: PointBatch) -> None:
        """Add up to ``bank_points_per_scene`` labelled rows (``segment``) of every sample."""
        feat = F.normalize(self.extractor(batch).float(), dim=1)
        label = batch['segment'].long()
        starts = [0] + batch.offset[:-1].tolist()
        for s, e in zip(starts, batch.offset.tolist()):
            rows = subsample_rows(label[s:e], self.bank_points_per_scene, self.class_balanced,
                                  self.ignore_index, self.generator) + s
            rows = rows.to(feat.device)
            self._feats.append(feat[rows].to(self.bank_dtype))
            self._labels.append(label[rows])

    def bank(self) -> tuple[Tensor, Tensor]:
        """(M, C) normalised bank features and (M,) labels."""
        if not self._feats:
            raise ValueError('the feature bank is empty: call add() on training scenes first')
        return torch.cat(self._feats), torch.cat(self._labels)

    @torch.no_grad()
    def predict(self, batch: PointBatch) -> list[dict[str, Any]]:
        """Per-sample ``pred``/``gt`` on the original points (rows if no ``inverse``)."""
        bank, label = self.bank()
        pred = knn_classify(self.extractor(batch), bank, label, self.num_classes, self.k,
                            self.temperature, bank_normalized=True)
        return predictions_on_points(batch, pred)

    def evaluate(self, batches: Iterable[PointBatch],
                 class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """mIoU / mAcc / allAcc, per-class ``iou``/``acc``, the confusion matrix and a
        printable per-class ``table`` over all scenes of ``batches``."""
        from .scenes import evaluate_scenes
        return evaluate_scenes(self.predict, batches, self.num_classes, self.ignore_index,
                               class_names)
