"""Supervised point-cloud semantic segmentation: backbone + per-voxel head + cross-entropy."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from geo3d.registry import MODELS
from geo3d.structures import PointBatch


def split_by_offset(x: Tensor, offset: Tensor) -> list[Tensor]:
    """(N, ...) rows -> list of per-sample tensors along the cumulative ends ``offset`` (B,)."""
    counts = torch.diff(offset, prepend=offset.new_zeros(1)).tolist()
    return list(torch.split(x, counts, dim=0))


@torch.no_grad()
def predictions_on_points(inputs: PointBatch, pred: Tensor) -> list[dict[str, Any]]:
    """Per-sample dicts for :class:`~geo3d.evaluation.SemSegMetric` from (N,) voxel predictions.

    With ``inverse`` in the batch the predictions are copied to the original points
    (``pred``/``gt`` (n_orig,)); otherwise they stay on the rows (``gt`` from ``segment``).
    """
    if 'inverse' in inputs:
        preds = split_by_offset(pred[inputs['inverse']], inputs['origin_offset'])
        gts = split_by_offset(inputs['origin_segment'], inputs['origin_offset']) \
            if 'origin_segment' in inputs else [None] * len(preds)
    else:
        preds = split_by_offset(pred, inputs.offset)
        gts = split_by_offset(inputs['segment'], inputs.offset) \
            if 'segment' in inputs else [None] * len(preds)
    out = []
    for i, (p, g) in enumerate(zip(preds, gts)):
        d: dict[str, Any] = {'pred': p.cpu()}
        if g is not None:
            d['gt'] = g.long().cpu()
        meta = inputs.meta[i] if i < len(inputs.meta) else {}
        d['name'] = meta.get('name', str(i))
        out.append(d)
    return out


@MODELS.register_module()
class PointSegmentor(BaseModel):
    """Semantic segmentation of voxelized point clouds.

    The backbone returns a list of levels (coarsest to finest); the head classifies the finest
    level's features, whose rows align with the input voxels.

    Inputs (a :class:`PointBatch`): ``feat`` (N, C_in), ``grid_coord`` (N, 3), extras
    ``segment`` (N,) labels of the voxels (training) and, for evaluation on the original
    points, ``inverse`` (N_orig,) and ``origin_segment`` (N_orig,) with ``origin_offset`` (B,).

    Args:
        backbone: config of the backbone (e.g. ``SpUNet``); must expose ``out_channels``.
        num_classes: K.
        head: config of the head; ``in_channels``/``num_classes`` are filled in.
        ignore_index: label that is excluded from the loss.
        label_smoothing: cross-entropy label smoothing.
    """

    def __init__(self, backbone: dict, num_classes: int, head: dict | None = None,
                 ignore_index: int = -1, label_smoothing: float = 0.0,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        # built here from geo3d's registry: BaseModel would look in mmengine's root registry,
        # which only sees geo3d modules inside a runner with default_scope='geo3d'
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor or dict(type='PointDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        head = dict(head or dict(type='LinearSegHead'))
        head.setdefault('in_channels', list(self.backbone.out_channels)[-1])
        head.setdefault('num_classes', num_classes)
        self.head = MODELS.build(head)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def logits(self, points: PointBatch) -> Tensor:
        """(N, K) per-voxel class logits."""
        levels = self.backbone(points)
        return self.head(levels[-1].feat)

    def forward(self, inputs: PointBatch, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        logits = self.logits(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            target = inputs['segment'].long()
            return {'loss_seg': F.cross_entropy(logits, target, ignore_index=self.ignore_index,
                                                label_smoothing=self.label_smoothing)}
        if mode == 'predict':
            return self.predict(inputs, logits)
        raise ValueError(f'unknown mode {mode!r}')

    def predict(self, inputs: PointBatch, logits: Tensor) -> list[dict[str, Any]]:
        """Per-sample predictions (see :func:`predictions_on_points`)."""
        return predictions_on_points(inputs, logits.argmax(1))
