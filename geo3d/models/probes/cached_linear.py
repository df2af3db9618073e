"""Linear probe trained on cached frozen features (extract once, then fit the linear layer).

The online probe (:class:`~geo3d.models.probes.LinearProbeSegmentor` through the runner) runs
the frozen backbone on augmented crops every iteration, as MSM's Table 15 protocol does. When
the backbone costs far more than the classifier (always, on a CPU), a converged probe is much
cheaper the offline way, as solo-learn / VISSL offer for images: run the frozen extractor ONCE
per training scene (the config's deterministic val pipeline, no augmentation), keep a random
subset of labelled voxels per scene, and fit ``standardise -> nn.Linear`` on them with
mini-batch AdamW and a cosine schedule. The standardisation uses the cache's per-channel mean
and std (fixed, so the probe stays one affine map of the frozen features).

Differences from the online probe: no augmentation, at most ``points_per_scene`` voxels of a
scene seen in training. Both are reported as "linear probe" but should not be mixed in one
table.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from geo3d.models.segmentors.point_segmentor import predictions_on_points
from geo3d.structures import PointBatch

from .knn_probe import subsample_rows


class StandardizedLinear(nn.Module):
    """``(x - mean) / std`` then ``nn.Linear``: (N, C) -> (N, K); mean/std are fixed buffers."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(in_channels))
        self.register_buffer('std', torch.ones(in_channels))
        self.linear = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear((x - self.mean) / self.std)


class CachedLinearProbe:
    """Cache of frozen training features + a linear classifier fitted on it.

    Args:
        extractor: PointBatch -> (N, C) frozen features (a
            :class:`~geo3d.models.probes.FrozenFeatureExtractor`).
        num_classes: K.
        points_per_scene: labelled voxels kept per training scene (random; ``class_balanced``
            gives every class present in the scene an equal quota).
        class_balanced: see above.
        ignore_index: label left out of the cache and the metric.
        seed: seed of the subsampling, the initialisation and the batch order.
    """

    def __init__(self, extractor: Callable[[PointBatch], Tensor], num_classes: int,
                 points_per_scene: int = 4000, class_balanced: bool = False,
                 ignore_index: int = -1, seed: int = 0) -> None:
        if points_per_scene < 1:
            raise ValueError(f'points_per_scene must be >= 1, got {points_per_scene}')
        self.extractor = extractor
        self.num_classes = num_classes
        self.points_per_scene = points_per_scene
        self.class_balanced = class_balanced
        self.ignore_index = ignore_index
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._feats: list[Tensor] = []
        self._labels: list[Tensor] = []
        self.head: StandardizedLinear | None = None

    @property
    def cache_size(self) -> int:
        return sum(int(x.shape[0]) for x in self._labels)

    @torch.no_grad()
    def add(self, batch: PointBatch) -> None:
        """Cache up to ``points_per_scene`` labelled rows (``segment``) of every sample."""
        feat = self.extractor(batch).float().cpu()
        label = batch['segment'].long().cpu()
        starts = [0] + batch.offset[:-1].tolist()
        for s, e in zip(starts, batch.offset.tolist()):
            rows = subsample_rows(label[s:e], self.points_per_scene, self.class_balanced,
                                  self.ignore_index, self.generator) + s
            self._feats.append(feat[rows])
            self._labels.append(label[rows])

    def cache(self) -> tuple[Tensor, Tensor]:
        """(M, C) cached features and (M,) labels."""
        if not self._feats:
            raise ValueError('the feature cache is empty: call add() on training scenes first')
        return torch.cat(self._feats), torch.cat(self._labels)

    def fit(self, epochs: int = 100, batch_size: int = 4096, lr: float = 0.01,
            weight_decay: float = 0.01, warmup_epochs: int = 2,
            log_interval: int = 0) -> list[float]:
        """Fit the standardised linear layer with AdamW (beta 0.9/0.95, as MSM's probe),
        linear warm-up then cosine decay per iteration; returns the mean loss of every epoch."""
        x, y = self.cache()
        if epochs < 1 or batch_size < 1:
            raise ValueError(f'epochs and batch_size must be >= 1, got {epochs}, {batch_size}')
        torch.manual_seed(self.seed)
        head = StandardizedLinear(x.shape[1], self.num_classes)
        head.mean.copy_(x.mean(0))
        head.std.copy_(x.std(0).clamp(min=1e-6))
        opt = torch.optim.AdamW(head.parameters(), lr=lr, betas=(0.9, 0.95),
                                weight_decay=weight_decay)
        steps_per_epoch = (x.shape[0] + batch_size - 1) // batch_size
        total, warm = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            p = (step - warm) / max(total - warm, 1)
            return 0.5 * (1.0 + float(np.cos(np.pi * p)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        gen = torch.Generator().manual_seed(self.seed)
        history = []
        for epoch in range(epochs):
            perm = torch.randperm(x.shape[0], generator=gen)
            run = 0.0
            for i in range(0, x.shape[0], batch_size):
                rows = perm[i:i + batch_size]
                loss = F.cross_entropy(head(x[rows]), y[rows], ignore_index=self.ignore_index)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                run += float(loss.detach()) * rows.numel()
            history.append(run / x.shape[0])
            if log_interval and ((epoch + 1) % log_interval == 0 or epoch + 1 == epochs):
                print_log(f'cached linear probe: epoch {epoch + 1}/{epochs} '
                          f'loss {history[-1]:.4f}', logger='current')
        self.head = head.eval()
        return history

    @torch.no_grad()
    def predict(self, batch: PointBatch) -> list[dict[str, Any]]:
        """Per-sample ``pred``/``gt`` on the original points (rows if no ``inverse``)."""
        if self.head is None:
            raise RuntimeError('call fit() before predict()')
        feat = self.extractor(batch).float()
        head = self.head.to(feat.device)
        return predictions_on_points(batch, head(feat).argmax(1))

    def evaluate(self, batches: Iterable[PointBatch],
                 class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """mIoU / mAcc / allAcc, per-class ``iou``/``acc``, the confusion matrix and a
        printable per-class ``table`` over all scenes of ``batches``."""
        from .scenes import evaluate_scenes
        return evaluate_scenes(self.predict, batches, self.num_classes, self.ignore_index,
                               class_names)
