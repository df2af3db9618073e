"""Gaussian2Scene stage 1: dual-branch (RGB-D image + point) masked autoencoder with
cross-modal alignment.

Gaussian2Scene (Liu, Yang, Fei, He, arXiv 2506.08777) pre-trains a 3D backbone in two stages;
stage 1 is a dual-branch masked autoencoder over a scene's points and its images whose branches
interact (the paper's code is not public: this follows its description, PiMAE (Chen et al.,
CVPR 2023, github.com/BLVLab/PiMAE) and MAE (He et al., CVPR 2022)):

* image branch (:class:`.image_mae.ImageMAE`): MAE on the scene's posed RGB-D frames;
* point branch (:mod:`.point_mae`): the SpUNet ``self.backbone`` on the voxelised scene with
  ~60 % of its voxel patches masked, reconstructing the masked voxels' colour (and normals);
* alignment (:mod:`.cross_modal`): the VISIBLE voxels are projected into the frames
  (occlusion-tested against the frames' depth), and their projected finest SpUNet features are
  aligned with the image encoder's features at those pixels (InfoNCE, T = 0.07).

The backbone is ``self.backbone`` (checkpoint keys ``backbone.*``), as in stage 2
(``load_from`` a stage-1 checkpoint) and for ``tools/linear_probe.py --checkpoint``.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor

from geo3d.registry import MODELS
from geo3d.structures import PointBatch

from .cross_modal import PointPixelAlignment, project_to_frames
from .frames_input import frame_tensor
from .image_mae import ImageMAE, ImageMAEOutput
from .point_mae import MaskedVoxelHead, VoxelPatchMasking

__all__ = ['Gaussian2SceneMAE']

LOSS_KEYS = ('image', 'point', 'align')


def _frame_tensor(inputs: Mapping[str, Any], key: str, shape: Sequence[int | None]) -> Tensor:
    return frame_tensor(inputs, key, shape, 'Gaussian2SceneMAE')


@MODELS.register_module()
class Gaussian2SceneMAE(BaseModel):
    """Stage 1 of Gaussian2Scene.

    Args:
        backbone: the point backbone config (a ``SpUNet``), kept as ``self.backbone``.
        image_encoder: the image encoder config (a ``MAEViTEncoder``).
        image_mae: options of :class:`.image_mae.ImageMAE` (``mask_ratio``, ``decoder_dim``,
            ``decoder_depth``, ``decoder_heads``, ``depth_input``, ``reconstruct_depth``,
            ``norm_pix``, ``depth_min``, ``depth_max``, ``mean``, ``std``).
        image_depth_weight: weight of the depth term inside ``loss_image``.
        point_mask: options of :class:`.point_mae.VoxelPatchMasking` (``mask_ratio``,
            ``patch_stride``, ``mode``, ``skip_token``, ``mask_token_at``).
        point_targets: per-voxel attributes reconstructed at masked voxels, ``{extras key:
            channels}`` or a list of 3-channel keys (``('color',)``, ``('color', 'normal')``).
        point_target_weights: weights of the point targets inside ``loss_point``.
        align: options of :class:`.cross_modal.PointPixelAlignment` (``dim``, ``hidden``,
            ``loss``, ``temperature``, ``sampling``, ``depth_tol``, ``min_depth``,
            ``max_pairs``); None disables the alignment (``loss_align`` is then absent).
        align_pixels: where pixel features come from: ``'visible'`` (the MAE pass's visible
            tokens; correspondences in masked patches are dropped; no extra cost) or
            ``'full'`` (one more encoder pass on all patches, with gradients).
        loss_weights: ``dict(image=, point=, align=)`` multipliers of the three losses.

    ``forward(inputs, data_samples, mode)``: ``inputs`` is the ``inputs`` dict of
    :func:`~geo3d.datasets.scannet_frames_collate` (``images`` (B, F, 3, H, W), ``depth``
    (B, F, 1, H, W), ``camera_to_world`` (B, F, 4, 4), ``intrinsics`` (B, F, 3, 3),
    ``depth_intrinsics``, ``points`` a voxelised :class:`PointBatch` of B scenes in the frames'
    world frame). ``mode='loss'`` returns ``loss_image``, ``loss_point``, ``loss_align`` (weighted)
    and unweighted terms for the log; ``'tensor'``/``'predict'`` return the backbone's levels
    (list of :class:`~geo3d.ops.sparse.SparseLevel`, coarsest first) of ``inputs['points']``
    (or of a bare PointBatch).
    """

    def __init__(self, backbone: dict, image_encoder: dict, image_mae: dict | None = None,
                 image_depth_weight: float = 1.0, point_mask: dict | None = None,
                 point_targets: Sequence[str] | Mapping[str, int] = ('color',),
                 point_target_weights: Mapping[str, float] | None = None,
                 align: dict | None = None,
                 align_pixels: Literal['visible', 'full'] = 'visible',
                 loss_weights: Mapping[str, float] | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='PointDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.image_mae = ImageMAE(image_encoder, **(image_mae or {}))
        self.image_depth_weight = float(image_depth_weight)
        self.point_mask = VoxelPatchMasking(self.backbone, **(point_mask or {}))
        targets = dict(point_targets) if isinstance(point_targets, Mapping) \
            else {k: 3 for k in point_targets}
        fine = self.backbone.out_channels[-1]
        self.point_head = MaskedVoxelHead(fine, targets, dict(point_target_weights or {}))
        self.align = None if align is None else PointPixelAlignment(
            fine, self.image_mae.encoder.embed_dim, **align)
        if align_pixels not in ('visible', 'full'):
            raise ValueError(f"align_pixels must be 'visible' or 'full', got {align_pixels!r}")
        if align is not None and align_pixels == 'visible' and self.align.sampling != 'nearest':
            raise ValueError("align_pixels='visible' reads one token per patch: use "
                             "align=dict(sampling='nearest') or align_pixels='full'")
        self.align_pixels = align_pixels
        weights = dict(image=1.0, point=1.0, align=0.5)
        unknown = set(loss_weights or {}) - set(LOSS_KEYS)
        if unknown:
            raise ValueError(f'loss_weights has unknown keys {sorted(unknown)}; use {LOSS_KEYS}')
        weights.update(loss_weights or {})
        self.loss_weights = weights

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: Mapping[str, Any] | PointBatch, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            if not isinstance(inputs, Mapping):
                raise TypeError('Gaussian2SceneMAE loss mode needs the dict of frames and '
                                f'points of scannet_frames_collate, got {type(inputs).__name__}')
            return self.loss(inputs)
        if mode in ('tensor', 'predict'):
            points = inputs['points'] if isinstance(inputs, Mapping) else inputs
            return self.backbone(points)
        raise ValueError(f'unknown mode {mode!r}')

    def image_losses(self, out: ImageMAEOutput) -> Tensor:
        loss = out.losses['rgb']
        if 'depth' in out.losses:
            loss = loss + self.image_depth_weight * out.losses['depth']
        return loss

    def loss(self, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        """The three stage-1 losses of one batch (see the class docstring)."""
        points = inputs.get('points')
        if not isinstance(points, PointBatch):
            raise KeyError("Gaussian2SceneMAE needs inputs['points'] (a PointBatch): set "
                           'load_points=True in ScanNetFramesDataset')
        images = _frame_tensor(inputs, 'images', (points.batch_size, None, 3, None, None))
        b, f, _, h, w = images.shape
        depth = None
        if self.image_mae.needs_depth or self.align is not None:
            depth = _frame_tensor(inputs, 'depth', (b, f, 1, h, w))
        img = self.image_mae(images.flatten(0, 1),
                             None if depth is None else depth.flatten(0, 1))
        masked = self.point_mask.sample(points)
        feat = self.point_mask(self.backbone, points, masked)
        point = self.point_head.loss(feat, points, masked)
        out = {'loss_image': self.loss_weights['image'] * self.image_losses(img),
               'loss_point': self.loss_weights['point'] * point['total'],
               'image_rgb_mse': img.losses['rgb'].detach()}
        if 'depth' in img.losses:
            out['image_depth_mse'] = img.losses['depth'].detach()
        for key in self.point_head.targets:
            out[f'point_{key}_mse'] = point[key].detach()
        if self.align is not None:
            c2w = _frame_tensor(inputs, 'camera_to_world', (b, f, 4, 4))
            K = _frame_tensor(inputs, 'intrinsics', (b, f, 3, 3))
            K_d = _frame_tensor(inputs, 'depth_intrinsics', (b, f, 3, 3)) \
                if 'depth_intrinsics' in inputs else None
            matches = project_to_frames(points.coord, points.batch, c2w, K, (h, w), depth, K_d,
                                        self.align.depth_tol, self.align.min_depth, ~masked)
            enc = self.image_mae.encoder
            if self.align_pixels == 'visible':
                tokens = img.tokens.new_zeros(img.tokens.shape[0], enc.num_patches,
                                              img.tokens.shape[2])
                tokens = tokens.scatter(1, img.keep[..., None].expand_as(img.tokens), img.tokens)
                visible = ~img.masked
            else:
                tokens, visible = enc(img.inputs), None
            align, stats = self.align(feat, matches, tokens, enc.patch_size, enc.grid_size,
                                      visible)
            out['loss_align'] = self.loss_weights['align'] * align
            out.update(stats)
        return out
