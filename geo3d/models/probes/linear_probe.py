"""Linear probing of a frozen backbone on multi-resolution sampled features (MSM's protocol).

Hermosilla et al., "Masked Scene Modeling", CVPR 2025 (§ linear probing, Table 15): the
pre-trained U-Net is frozen, every level is sampled at each point's stride-1 voxel
(:class:`~geo3d.models.probes.sampler.MultiResolutionSampler`), the levels are concatenated and
a single linear layer is trained with cross-entropy.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from geo3d.models.segmentors.point_segmentor import predictions_on_points
from geo3d.registry import MODELS
from geo3d.structures import PointBatch

from .weights import DEFAULT_PREFIXES, load_backbone_weights


class FrozenFeatureExtractor(nn.Module):
    """A frozen backbone plus a :class:`MultiResolutionSampler`: PointBatch -> (N, sum C_l).

    The backbone always runs in eval mode (BatchNorm uses its running statistics, even when
    the owner is set to train) under ``torch.no_grad()`` in float32.

    Args:
        backbone: backbone config (must expose ``out_channels`` and ``out_strides``).
        sampler: sampler config; ``in_channels``/``in_strides`` are filled in from the backbone.
        backbone_checkpoint: checkpoint to read the backbone weights from; None keeps the
            random initialisation (the baseline).
        checkpoint_prefixes: key prefixes tried in the checkpoint (see
            :func:`~geo3d.models.probes.weights.load_backbone_weights`).
    """

    def __init__(self, backbone: dict, sampler: dict | None = None,
                 backbone_checkpoint: str | None = None,
                 checkpoint_prefixes: Sequence[str] = DEFAULT_PREFIXES) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        sampler = dict(sampler or dict(type='MultiResolutionSampler'))
        sampler.setdefault('type', 'MultiResolutionSampler')
        sampler.setdefault('in_channels', list(self.backbone.out_channels))
        sampler.setdefault('in_strides', list(getattr(self.backbone, 'out_strides', [])) or None)
        self.sampler = MODELS.build(sampler)
        self.backbone_checkpoint = backbone_checkpoint
        self.loaded_prefix: str | None = None
        if backbone_checkpoint:
            self.loaded_prefix = load_backbone_weights(self.backbone, backbone_checkpoint,
                                                       checkpoint_prefixes)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    @property
    def out_channels(self) -> int:
        return int(self.sampler.out_channels)

    def train(self, mode: bool = True) -> 'FrozenFeatureExtractor':
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, points: PointBatch) -> Tensor:
        """(N, sum C_l) features of the N input rows (sampled at their own ``grid_coord``)."""
        if points.grid_coord is None:
            raise ValueError('the probe needs a voxelized PointBatch (grid_coord is None)')
        with torch.no_grad(), torch.autocast(points.device.type, enabled=False):
            levels = self.backbone(points)
            return self.sampler(levels, points.grid_coord, points.batch)


@MODELS.register_module()
class LinearProbeSegmentor(BaseModel):
    """Frozen backbone + multi-resolution sampler + one ``nn.Linear`` (semantic segmentation).

    Inputs as for :class:`~geo3d.models.segmentors.PointSegmentor`: a voxelized
    :class:`PointBatch` with ``segment`` (N,) for training and ``inverse`` (N_orig,),
    ``origin_segment``/``origin_offset`` for evaluation on the original points. Every original
    point lies in one input voxel, so features are sampled at the voxels' own grid coordinates
    and voxel predictions are copied to points via ``inverse``.

    Args:
        backbone: backbone config (e.g. ``SpUNet``).
        num_classes: K.
        backbone_checkpoint: checkpoint with the backbone weights (None = random backbone).
        sampler: :class:`MultiResolutionSampler` config (mode, levels, chunk_size).
        feat_norm: ``'none'`` (default) or ``'bn'``: a ``BatchNorm1d(affine=False)`` on the
            sampled features before the linear layer (still a linear probe at test time).
        ignore_index: label excluded from the loss.
        checkpoint_prefixes: key prefixes tried in the checkpoint.
    """

    def __init__(self, backbone: dict, num_classes: int, backbone_checkpoint: str | None = None,
                 sampler: dict | None = None, feat_norm: str = 'none', ignore_index: int = -1,
                 checkpoint_prefixes: Sequence[str] = DEFAULT_PREFIXES,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor or dict(type='PointDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.extractor = FrozenFeatureExtractor(backbone, sampler, backbone_checkpoint,
                                                checkpoint_prefixes)
        c = self.extractor.out_channels
        if feat_norm == 'bn':
            self.norm: nn.Module = nn.BatchNorm1d(c, affine=False)
        elif feat_norm == 'none':
            self.norm = nn.Identity()
        else:
            raise ValueError(f"feat_norm must be 'none' or 'bn', got {feat_norm!r}")
        self.classifier = nn.Linear(c, num_classes)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    @property
    def backbone(self) -> nn.Module:
        return self.extractor.backbone

    def init_weights(self) -> None:
        """Nothing to do: the backbone holds the checkpoint's weights (re-initialising it, as
        mmengine's runner would, must not happen) and the classifier PyTorch's default init."""

    def extract_feat(self, points: PointBatch) -> Tensor:
        """(N, sum C_l) frozen features of the input voxels."""
        return self.extractor(points)

    def logits(self, points: PointBatch) -> Tensor:
        """(N, K) per-voxel class logits."""
        return self.classifier(self.norm(self.extract_feat(points)))

    def forward(self, inputs: PointBatch, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        logits = self.logits(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return {'loss_seg': F.cross_entropy(logits, inputs['segment'].long(),
                                                ignore_index=self.ignore_index)}
        if mode == 'predict':
            return predictions_on_points(inputs, logits.argmax(1))
        raise ValueError(f'unknown mode {mode!r}')
