"""Gaussian2Scene stage 2: per-point 3D Gaussians rendered into the scene's posed RGB-D frames.

Gaussian2Scene (Liu, Yang, Fei, He, arXiv 2506.08777) pre-trains the point backbone in a second
stage by predicting 3D Gaussians and supervising "the geometric locations of Gaussian
primitives" and "rendered RGB images". No code is public; the specification here is the paper's
description plus UniPre3D (Wang et al., CVPR 2025, github.com/wangzy22/UniPre3D), whose SpUNet
predicts one Gaussian per point and renders it into posed frames. Choices (all options):

* input: the scene's voxelised points (``inputs['points']``, colour + normal features); the
  paper's "reconstructed point clouds" (stage 1's reconstruction as input) are out of scope;
  ``crop='frustum'`` keeps only the voxels inside the sample's frames' view frustums (plus a
  ``crop_margin`` border), which all that can be seen in them (a cheaper step on a CPU);
* Gaussians (:class:`.gaussian_head.GaussianHead`): one per voxel from the SpUNet's finest
  decoder level (stride 1), anchored at the voxel centre (``anchor='voxel_center'``, i.e.
  ``(floor(coord / voxel) + 0.5) * voxel``) or at the voxel's point (``'point'``);
* rendering (:func:`geo3d.rendering.rasterize`; gsplat on CUDA, the tiled torch path on CPU):
  every scene's Gaussians into its ``F`` frames, ``viewmats = camera_to_world^-1``, the frames'
  intrinsics rescaled to the render size and moved to gsplat's pixel convention (pixel centres
  at ``+0.5``: ``cx_gsplat = (cx + 0.5) * W_render / W``); background ``render.background``;
* losses (``loss_weights``): ``rgb_l1`` 0.8 and ``rgb_ssim`` 0.2 (3DGS's photometric loss;
  UniPre3D uses L2 (+ LPIPS late)), ``depth`` (L1 in metres where the frame measured depth and
  the render's alpha exceeds ``depth_alpha_threshold``; the measured depth is first resampled
  into the colour camera when ``depth_intrinsics`` differ from ``intrinsics``, as in real
  ScanNet), ``geometry`` (Gaussian centre -> nearest scene point, in voxel sizes; ``geometry``
  options: ``mode='nearest'`` | ``'chamfer'`` (both directions) | ``'own_point'`` (the
  voxel's own point), ``target='coord'`` (the voxelised points) | ``'origin_coord'`` (all
  points, from ``GridSample(return_inverse=True, origin_keys=('coord',))``), ``squared``),
  ``opacity_reg`` (mean opacity) and ``scale_reg`` (mean standard deviation in voxels), the two
  regularisers of 3DGS-MCMC (Kheradmand et al., NeurIPS 2024), off by default.

``forward(inputs, data_samples, mode)`` with ``inputs`` from
:func:`~geo3d.datasets.scannet_frames_collate` (``load_points=True``): ``'loss'`` returns the
weighted ``loss_*`` terms plus ``psnr`` and ``alpha`` of the batch's renders (logged);
``'predict'`` renders the frames of ``inputs`` (the held-out ones in validation) and returns one
dict per scene for :class:`geo3d.evaluation.RenderMetric`; ``'tensor'`` returns the backbone's
levels. The backbone is ``self.backbone`` (checkpoint keys ``backbone.*``), as in stage 1, so
``load_from`` a stage-1 checkpoint fills it and ``tools/linear_probe.py --checkpoint`` reads it.
"""
from __future__ import annotations

import copy
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from geo3d.evaluation.render import psnr as psnr_of
from geo3d.registry import MODELS
from geo3d.rendering import RenderOutput, rasterize
from geo3d.structures import PointBatch, offset_to_batch

from .frames_input import frame_tensor
from .gaussian_head import Gaussians
from .render_losses import (chamfer_distance, depth_l1_loss, point_to_set_distance,
                            rgb_l1_loss, rgb_ssim_loss)

__all__ = ['Gaussian2Scene', 'voxel_anchors', 'render_intrinsics', 'align_depth_to_color',
           'frustum_mask', 'select_rows', 'LOSS_KEYS']

LOSS_KEYS = ('rgb_l1', 'rgb_ssim', 'depth', 'geometry', 'opacity_reg', 'scale_reg')
DEFAULT_LOSS_WEIGHTS = dict(rgb_l1=0.8, rgb_ssim=0.2, depth=0.1, geometry=0.1, opacity_reg=0.0,
                            scale_reg=0.0)
DEFAULT_RENDER = dict(width=None, height=None, backend='auto', near_plane=0.05,
                      far_plane=100.0, eps2d=0.3, tile_size=None, chunk=16,
                      background=(0.0, 0.0, 0.0))
DEFAULT_GEOMETRY = dict(mode='nearest', target='coord', squared=False, backend='auto',
                        chunk=1024)
GEOMETRY_MODES = ('nearest', 'chamfer', 'own_point')
GEOMETRY_TARGETS = ('coord', 'origin_coord')


def voxel_anchors(coord: Tensor, voxel_size: float,
                  mode: Literal['voxel_center', 'point'] = 'voxel_center') -> Tensor:
    """(N, 3) anchors of the Gaussians: ``(floor(coord / voxel) + 0.5) * voxel`` or ``coord``.

    ``coord`` (N, 3) are the voxelised points (one point of each voxel, world frame), so
    ``floor(coord / voxel)`` is the voxel's index in the unshifted grid.
    """
    if mode == 'voxel_center':
        return (torch.floor(coord / voxel_size) + 0.5) * voxel_size
    if mode == 'point':
        return coord
    raise ValueError(f"anchor must be 'voxel_center' or 'point', got {mode!r}")


def render_intrinsics(K: Tensor, src_hw: Sequence[int], dst_hw: Sequence[int]) -> Tensor:
    """(..., 3, 3) intrinsics of an ``src_hw`` image (pixel centres at integers, OpenCV /
    ScanNet) -> those of the ``dst_hw`` render in gsplat's convention (pixel ``j`` centred at
    ``j + 0.5``): ``fx' = fx sx``, ``cx' = (cx + 0.5) sx`` with ``sx = W_dst / W_src`` (y alike).
    """
    sx = float(dst_hw[1]) / float(src_hw[1])
    sy = float(dst_hw[0]) / float(src_hw[0])
    out = K.clone()
    out[..., 0, 0] = K[..., 0, 0] * sx
    out[..., 0, 1] = K[..., 0, 1] * sx
    out[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx
    out[..., 1, 1] = K[..., 1, 1] * sy
    out[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy
    return out


def align_depth_to_color(depth: Tensor, K_depth: Tensor, K_color: Tensor) -> Tensor:
    """Resample depth maps into the colour camera (same centre and axes, other intrinsics).

    ScanNet's colour and depth frames share the pose but not the intrinsics; the depth seen at
    colour pixel ``p`` is the depth map's value at ``K_depth K_color^-1 p`` (nearest pixel;
    z-depth is unchanged by the homography); outside the depth image it is 0 (no measurement).

    Args:
        depth: (F, 1, H, W) metres; K_depth, K_color: (F, 3, 3) at H x W (pixel centres at
            integers).

    Returns:
        (F, 1, H, W) depth on the colour pixels.
    """
    f, _, h, w = depth.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=depth.dtype, device=depth.device),
                          torch.arange(w, dtype=depth.dtype, device=depth.device),
                          indexing='ij')
    pix = torch.stack([u, v, torch.ones_like(u)], 0).reshape(3, -1)
    H = K_depth.to(depth.dtype) @ torch.linalg.inv(K_color.to(depth.dtype))  # (F, 3, 3)
    q = H @ pix
    qu = torch.round(q[:, 0] / q[:, 2]).long()
    qv = torch.round(q[:, 1] / q[:, 2]).long()
    inside = (qu >= 0) & (qu < w) & (qv >= 0) & (qv < h)
    flat = depth.reshape(f, h * w)
    vals = torch.gather(flat, 1, (qv.clamp(0, h - 1) * w + qu.clamp(0, w - 1)))
    return torch.where(inside, vals, torch.zeros_like(vals)).reshape(f, 1, h, w)


def frustum_mask(coord: Tensor, camera_to_world: Tensor, intrinsics: Tensor,
                 frame_hw: Sequence[int], margin: float = 0.1, near: float = 0.05) -> Tensor:
    """(N,) bool: points in front of (``z > near``) and projecting inside at least one frame,
    the image enlarged by ``margin`` of its size on every side.

    Args:
        coord: (N, 3) world points; camera_to_world: (F, 4, 4); intrinsics: (F, 3, 3) at
            ``frame_hw`` = (H, W), pixel centres at integers.
    """
    h, w = float(frame_hw[0]), float(frame_hw[1])
    w2c = torch.linalg.inv(camera_to_world.to(torch.float64))
    x = torch.einsum('fij,nj->fni', w2c[:, :3, :3], coord.to(torch.float64)) + w2c[:, None, :3, 3]
    z = x[..., 2]
    zs = z.clamp(min=1e-9)
    K = intrinsics.to(torch.float64)
    u = K[:, None, 0, 0] * x[..., 0] / zs + K[:, None, 0, 1] * x[..., 1] / zs + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * x[..., 1] / zs + K[:, None, 1, 2]
    mu, mv = margin * w, margin * h
    inside = ((z > near) & (u >= -0.5 - mu) & (u <= w - 0.5 + mu) & (v >= -0.5 - mv)
              & (v <= h - 0.5 + mv))
    return inside.any(0)


def select_rows(points: PointBatch, keep: Tensor) -> PointBatch:
    """The rows ``keep`` ((N,) bool) of a batch: coord, feat, grid_coord and the per-row extras
    (``origin_*`` / ``inverse`` maps are dropped: they index the full rows)."""
    n = points.num_points
    batch = points.batch[keep]
    extras = {k: v[keep] for k, v in points.extras.items()
              if isinstance(v, Tensor) and v.shape[:1] == (n,) and not k.startswith('origin_')
              and k != 'inverse'}
    counts = torch.bincount(batch, minlength=points.batch_size)
    return PointBatch(coord=points.coord[keep], feat=points.feat[keep], offset=counts.cumsum(0),
                      grid_coord=None if points.grid_coord is None else points.grid_coord[keep],
                      grid_size=points.grid_size, extras=extras, meta=points.meta)


def _frames(inputs: Mapping[str, Any], key: str, shape: Sequence[int | None]) -> Tensor:
    return frame_tensor(inputs, key, shape, 'Gaussian2Scene')


@MODELS.register_module()
class Gaussian2Scene(BaseModel):
    """Stage 2 of Gaussian2Scene (see the module docstring).

    Args:
        backbone: the point backbone config (a ``SpUNet``), kept as ``self.backbone``.
        head: :class:`.gaussian_head.GaussianHead` options (``type`` optional;
            ``in_channels`` defaults to the backbone's finest level).
        render: ``width``, ``height`` (None: the frames' size), ``backend`` ('auto', 'gsplat',
            'torch'), ``near_plane``, ``far_plane``, ``eps2d``, ``tile_size``, ``chunk``,
            ``background`` (RGB in [0, 1]).
        loss_weights: multipliers of ``rgb_l1``, ``rgb_ssim``, ``depth``, ``geometry``,
            ``opacity_reg``, ``scale_reg`` (a weight of 0 skips the term).
        geometry: ``mode``, ``target``, ``squared``, ``backend`` ('auto', 'kdtree', 'cdist'),
            ``chunk`` of the geometric loss (see the module docstring).
        anchor: ``'voxel_center'`` or ``'point'``.
        voxel_size: voxel edge; None takes the batch's ``PointBatch.grid_size``.
        color_key: ``PointBatch`` extra holding the input colours in [-1, 1] (NormalizeColor),
            read by a head with ``color_residual``.
        depth_alpha_threshold: rendered alpha above which the depth loss counts a pixel.
        rgb_mask: ``'none'`` (every pixel, as 3DGS / UniPre3D) or ``'depth'`` (only pixels
            with a depth measurement) for the photometric losses.
        crop: None (all voxels) or ``'frustum'`` (only the voxels the sample's frames can see,
            :func:`frustum_mask`; a scene none of whose voxels is seen keeps all of them).
        crop_margin: border added to the images by the frustum crop, as a fraction of their size.
    """

    def __init__(self, backbone: dict, head: dict | None = None, render: dict | None = None,
                 loss_weights: Mapping[str, float] | None = None,
                 geometry: Mapping[str, Any] | None = None,
                 anchor: Literal['voxel_center', 'point'] = 'voxel_center',
                 voxel_size: float | None = None, color_key: str = 'color',
                 depth_alpha_threshold: float = 0.5,
                 rgb_mask: Literal['none', 'depth'] = 'none',
                 crop: Literal['frustum'] | None = None, crop_margin: float = 0.1,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='PointDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        head_cfg = dict(copy.deepcopy(head or {}))
        head_cfg.setdefault('type', 'GaussianHead')
        head_cfg.setdefault('in_channels', self.backbone.out_channels[-1])
        self.head = MODELS.build(head_cfg)
        self.render_cfg = self._merge('render', DEFAULT_RENDER, render)
        if self.render_cfg['backend'] not in ('auto', 'gsplat', 'torch'):
            raise ValueError(f"render.backend must be 'auto', 'gsplat' or 'torch', got "
                             f"{self.render_cfg['backend']!r}")
        for k in ('width', 'height'):
            v = self.render_cfg[k]
            if v is not None and (not isinstance(v, int) or v < 2):
                raise ValueError(f'render.{k} must be None or an int >= 2, got {v!r}')
        if (self.render_cfg['width'] is None) != (self.render_cfg['height'] is None):
            raise ValueError('render.width and render.height must both be set or both None')
        bg = torch.as_tensor(self.render_cfg['background'], dtype=torch.float32)
        if bg.shape != (3,):
            raise ValueError(f'render.background must be 3 floats (RGB), got '
                             f"{self.render_cfg['background']!r}")
        self.register_buffer('background', bg, persistent=False)
        self.loss_weights = self._merge('loss_weights', DEFAULT_LOSS_WEIGHTS, loss_weights)
        self.geometry = self._merge('geometry', DEFAULT_GEOMETRY, geometry)
        if self.geometry['mode'] not in GEOMETRY_MODES:
            raise ValueError(f"geometry.mode must be one of {GEOMETRY_MODES}, got "
                             f"{self.geometry['mode']!r}")
        if self.geometry['target'] not in GEOMETRY_TARGETS:
            raise ValueError(f"geometry.target must be one of {GEOMETRY_TARGETS}, got "
                             f"{self.geometry['target']!r}")
        if anchor not in ('voxel_center', 'point'):
            raise ValueError(f"anchor must be 'voxel_center' or 'point', got {anchor!r}")
        if voxel_size is not None and not voxel_size > 0:
            raise ValueError(f'voxel_size must be positive or None, got {voxel_size}')
        if rgb_mask not in ('none', 'depth'):
            raise ValueError(f"rgb_mask must be 'none' or 'depth', got {rgb_mask!r}")
        if crop not in (None, 'frustum'):
            raise ValueError(f"crop must be None or 'frustum', got {crop!r}")
        if crop_margin < 0:
            raise ValueError(f'crop_margin must be >= 0, got {crop_margin}')
        self.crop = crop
        self.crop_margin = float(crop_margin)
        self.anchor = anchor
        self.voxel_size = voxel_size
        self.color_key = color_key
        self.depth_alpha_threshold = float(depth_alpha_threshold)
        self.rgb_mask = rgb_mask

    @staticmethod
    def _merge(name: str, defaults: Mapping[str, Any],
               given: Mapping[str, Any] | None) -> dict[str, Any]:
        unknown = set(given or {}) - set(defaults)
        if unknown:
            raise ValueError(f'{name} has unknown keys {sorted(unknown)}; use '
                             f'{sorted(defaults)}')
        out = dict(defaults)
        out.update(given or {})
        return out

    # ------------------------------------------------------------------ Gaussians
    def voxel_size_of(self, points: PointBatch) -> float:
        size = self.voxel_size if self.voxel_size is not None else points.grid_size
        if size is None:
            raise ValueError('Gaussian2Scene needs the voxel size: set voxel_size in the model '
                             'config or voxelise with GridSample (which records grid_size)')
        return float(size)

    def predict_gaussians(self, points: PointBatch) -> Gaussians:
        """All Gaussians of the batch (N rows, in the row order of ``points``)."""
        if not isinstance(points, PointBatch):
            raise TypeError(f"inputs['points'] must be a PointBatch, got "
                            f'{type(points).__name__}')
        voxel = self.voxel_size_of(points)
        feat = self.backbone(points)[-1].feat  # stride 1: the input rows, in order
        rgb = None
        if getattr(self.head, 'color_residual', False):
            if self.color_key not in points:
                raise KeyError(f'the head predicts colour residuals but the points have no '
                               f'{self.color_key!r} extra (add it to Collect keys); extras: '
                               f'{sorted(points.extras)}')
            rgb = ((points[self.color_key].to(feat.dtype) + 1.0) * 0.5).clamp(0.0, 1.0)
        # the head and the renderer run in float32 (gsplat needs it) also under --amp
        if feat.dtype in (torch.float16, torch.bfloat16):
            feat = feat.float()
        anchors = voxel_anchors(points.coord.to(feat.dtype), voxel, self.anchor)
        with torch.autocast(device_type=feat.device.type, enabled=False):
            return self.head(feat, anchors, voxel, None if rgb is None else rgb.to(feat.dtype))

    def gaussians(self, points: PointBatch) -> list[Gaussians]:
        """The Gaussians of every scene of the batch."""
        g = self.predict_gaussians(points)
        ends = points.offset.tolist()
        return [g.select(slice(s, e)) for s, e in zip([0] + ends[:-1], ends)]

    # ------------------------------------------------------------------ rendering
    def render_size(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        if self.render_cfg['width'] is None:
            return int(frame_hw[0]), int(frame_hw[1])
        return int(self.render_cfg['height']), int(self.render_cfg['width'])

    def render(self, g: Gaussians, camera_to_world: Tensor, intrinsics: Tensor,
               frame_hw: Sequence[int]) -> RenderOutput:
        """Render one scene's Gaussians into its ``F`` frames at the render size.

        Args:
            g: the scene's Gaussians.
            camera_to_world: (F, 4, 4) OpenCV camera poses.
            intrinsics: (F, 3, 3) of the frames at ``frame_hw`` (pixel centres at integers).
            frame_hw: (H, W) of the frames.

        Returns:
            :class:`RenderOutput` with ``rgb`` (F, h, w, 3), ``depth`` / ``alpha``
            (F, h, w, 1) at the render size ``(h, w)``.
        """
        h, w = self.render_size(frame_hw)
        dtype = g.means.dtype
        viewmats = torch.linalg.inv(camera_to_world.to(dtype))
        Ks = render_intrinsics(intrinsics.to(dtype), frame_hw, (h, w))
        cfg = self.render_cfg
        with torch.autocast(device_type=g.means.device.type, enabled=False):
            return rasterize(g.means, g.quats, g.scales, g.opacities, g.colors, viewmats, Ks, w,
                             h, near_plane=cfg['near_plane'], far_plane=cfg['far_plane'],
                             eps2d=cfg['eps2d'], backgrounds=self.background.to(dtype),
                             backend=cfg['backend'], sh_degree=g.sh_degree,
                             tile_size=cfg['tile_size'], chunk=cfg['chunk'])

    def targets(self, inputs: Mapping[str, Any], b: int,
                render_hw: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Scene ``b``'s real frames at the render size: RGB (F, 3, h, w) and depth (F, 1, h, w)
        on the colour camera's pixels (0 = no measurement)."""
        images = inputs['images'][b]
        hw = tuple(images.shape[-2:])
        depth = inputs['depth'][b]
        if 'depth_intrinsics' in inputs and not torch.equal(inputs['depth_intrinsics'][b],
                                                            inputs['intrinsics'][b]):
            depth = align_depth_to_color(depth, inputs['depth_intrinsics'][b],
                                         inputs['intrinsics'][b])
        if tuple(render_hw) != hw:
            shrink = render_hw[0] <= hw[0] and render_hw[1] <= hw[1]
            images = F.interpolate(images, size=tuple(render_hw),
                                   mode='area' if shrink else 'bilinear',
                                   **({} if shrink else {'align_corners': False}))
            depth = F.interpolate(depth, size=tuple(render_hw), mode='nearest-exact')
        return images, depth

    def _check_inputs(self, inputs: Any) -> tuple[PointBatch, int, tuple[int, int]]:
        if not isinstance(inputs, Mapping):
            raise TypeError('Gaussian2Scene needs the dict of frames and points of '
                            f'scannet_frames_collate, got {type(inputs).__name__}')
        points = inputs.get('points')
        if not isinstance(points, PointBatch):
            raise KeyError("Gaussian2Scene needs inputs['points'] (a PointBatch): set "
                           'load_points=True in ScanNetFramesDataset')
        b = points.batch_size
        images = _frames(inputs, 'images', (b, None, 3, None, None))
        f, h, w = images.shape[1], images.shape[3], images.shape[4]
        _frames(inputs, 'depth', (b, f, 1, h, w))
        _frames(inputs, 'camera_to_world', (b, f, 4, 4))
        _frames(inputs, 'intrinsics', (b, f, 3, 3))
        if 'depth_intrinsics' in inputs:
            _frames(inputs, 'depth_intrinsics', (b, f, 3, 3))
        if self.crop == 'frustum':
            points = self.crop_to_frustums(points, inputs, (h, w))
        return points, b, (h, w)

    def crop_to_frustums(self, points: PointBatch, inputs: Mapping[str, Any],
                         frame_hw: Sequence[int]) -> PointBatch:
        """The voxels of every scene that its frames can see (see ``crop``)."""
        keep = torch.zeros(points.num_points, dtype=torch.bool, device=points.device)
        ends = points.offset.tolist()
        for i, (s, e) in enumerate(zip([0] + ends[:-1], ends)):
            m = frustum_mask(points.coord[s:e], inputs['camera_to_world'][i],
                             inputs['intrinsics'][i], frame_hw, self.crop_margin,
                             self.render_cfg['near_plane'])
            keep[s:e] = m if bool(m.any()) else True
        return select_rows(points, keep)

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: Mapping[str, Any] | PointBatch, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            points = inputs['points'] if isinstance(inputs, Mapping) else inputs
            return self.backbone(points)
        raise ValueError(f"unknown mode {mode!r}; use 'loss', 'predict' or 'tensor'")

    def geometry_loss(self, g: Gaussians, points: PointBatch, voxel: float) -> Tensor:
        """Gaussian centres vs the scene surface, in voxel sizes (see the module docstring)."""
        cfg = self.geometry
        means = g.means
        if cfg['mode'] == 'own_point':
            d2 = (means - points.coord.to(means.dtype)).pow(2).sum(1)
            d = d2 if cfg['squared'] else torch.where(d2 > 0, d2.clamp(min=1e-30).sqrt(), d2)
            return d.mean() / (voxel ** 2 if cfg['squared'] else voxel)
        if cfg['target'] == 'origin_coord':
            if 'origin_coord' not in points or 'origin_offset' not in points:
                raise KeyError("geometry.target='origin_coord' needs the points' origin_coord "
                               "(GridSample(return_inverse=True, origin_keys=('coord',)) and "
                               "Collect keys 'inverse', 'origin_coord')")
            ref = points['origin_coord'].to(means.dtype)
            ref_batch = offset_to_batch(points['origin_offset'])
        else:
            ref, ref_batch = points.coord.to(means.dtype), points.batch
        kw = dict(squared=cfg['squared'], backend=cfg['backend'], chunk=cfg['chunk'])
        if cfg['mode'] == 'chamfer':
            d = chamfer_distance(means, ref, points.batch, ref_batch, **kw)
        else:
            d = point_to_set_distance(means, ref, points.batch, ref_batch, **kw).mean()
        return d / (voxel ** 2 if cfg['squared'] else voxel)

    def loss(self, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        """Weighted ``loss_<term>`` for the terms with a non-zero weight, and ``psnr`` /
        ``alpha`` (mean rendered PSNR in dB and opacity of the batch's frames, no gradient)."""
        points, b, frame_hw = self._check_inputs(inputs)
        voxel = self.voxel_size_of(points)
        g_all = self.predict_gaussians(points)
        w = self.loss_weights
        ends = points.offset.tolist()
        terms: dict[str, list[Tensor]] = {k: [] for k in ('rgb_l1', 'rgb_ssim', 'depth')}
        psnrs, alphas = [], []
        for i, (s, e) in enumerate(zip([0] + ends[:-1], ends)):
            out = self.render(g_all.select(slice(s, e)), inputs['camera_to_world'][i],
                              inputs['intrinsics'][i], frame_hw)
            rgb = out.rgb.permute(0, 3, 1, 2)
            depth = out.depth.permute(0, 3, 1, 2)
            alpha = out.alpha.permute(0, 3, 1, 2)
            tgt_rgb, tgt_depth = self.targets(inputs, i, rgb.shape[-2:])
            tgt_rgb = tgt_rgb.to(rgb.dtype)
            tgt_depth = tgt_depth.to(rgb.dtype)
            mask = (tgt_depth > 0) if self.rgb_mask == 'depth' else None
            if w['rgb_l1']:
                terms['rgb_l1'].append(rgb_l1_loss(rgb, tgt_rgb, mask))
            if w['rgb_ssim']:
                terms['rgb_ssim'].append(rgb_ssim_loss(rgb, tgt_rgb, mask))
            if w['depth']:
                terms['depth'].append(depth_l1_loss(depth, tgt_depth, alpha,
                                                    self.depth_alpha_threshold))
            with torch.no_grad():
                psnrs.append(psnr_of(rgb.clamp(0, 1), tgt_rgb, mask).mean())
                alphas.append(alpha.mean())
        out: dict[str, Tensor] = {}
        for k, vals in terms.items():
            if vals:
                out[f'loss_{k}'] = w[k] * torch.stack(vals).mean()
        if w['geometry']:
            out['loss_geometry'] = w['geometry'] * self.geometry_loss(g_all, points, voxel)
        if w['opacity_reg']:
            out['loss_opacity_reg'] = w['opacity_reg'] * g_all.opacities.mean()
        if w['scale_reg']:
            out['loss_scale_reg'] = w['scale_reg'] * (g_all.scales / voxel).mean()
        out['psnr'] = torch.stack(psnrs).mean()
        out['alpha'] = torch.stack(alphas).mean()
        return out

    @torch.no_grad()
    def predict(self, inputs: Mapping[str, Any], data_samples: Any = None) -> list[dict]:
        """Render every scene's frames; one dict per scene (CPU tensors) with ``pred_rgb``
        (F, 3, h, w) in [0, 1], ``gt_rgb``, ``pred_depth`` / ``gt_depth`` / ``alpha``
        (F, 1, h, w), ``frame_ids`` (F,) and ``name``: what :class:`RenderMetric` reads."""
        points, b, frame_hw = self._check_inputs(inputs)
        gs = self.gaussians(points)
        results = []
        for i, g in enumerate(gs):
            out = self.render(g, inputs['camera_to_world'][i], inputs['intrinsics'][i],
                              frame_hw)
            rgb = out.rgb.permute(0, 3, 1, 2).clamp(0, 1)
            tgt_rgb, tgt_depth = self.targets(inputs, i, rgb.shape[-2:])
            name = None
            if data_samples is not None and i < len(data_samples):
                ds = data_samples[i]
                name = ds.get('name') if isinstance(ds, Mapping) else getattr(ds, 'name', None)
            res = {'pred_rgb': rgb.float().cpu(), 'gt_rgb': tgt_rgb.float().cpu(),
                   'pred_depth': out.depth.permute(0, 3, 1, 2).float().cpu(),
                   'gt_depth': tgt_depth.float().cpu(),
                   'alpha': out.alpha.permute(0, 3, 1, 2).float().cpu(),
                   'name': name if name is not None else f'scene{i}',
                   'num_gaussians': g.num}
            if 'frame_ids' in inputs:
                res['frame_ids'] = inputs['frame_ids'][i].cpu()
            results.append(res)
        return results
