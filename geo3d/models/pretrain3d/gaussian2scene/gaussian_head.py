"""Per-point 3D Gaussian parameters predicted from point features (Gaussian2Scene stage 2).

Gaussian2Scene (Liu et al., arXiv 2506.08777) has no public code; the head follows UniPre3D
(Wang et al., CVPR 2025, github.com/wangzy22/UniPre3D, ``model/gaussian_predictor.py``): every
voxel of the point backbone's finest decoder level predicts one Gaussian from its feature
``f`` (N, C) through one linear layer (after an optional hidden layer) split into

==========  ========  =====================================================================
offset      3         ``tanh(x) * offset_scale * voxel``, added to the voxel's anchor (its
                      centre): the centre moves at most ``offset_scale`` voxels per axis
scale       3         ``voxel * exp(clamp(x, log(scale_range[0]), log(scale_range[1])))``:
                      standard deviations relative to the voxel size (UniPre3D: exp of a
                      clamped value)
rotation    4         ``x / |x|``, a unit quaternion ``(w, x, y, z)``
opacity     1         ``sigmoid(x)``
colour      3         ``'rgb'``: ``sigmoid(x)`` in [0, 1]; ``'sh_dc'``: the degree-0 SH
                      coefficient (UniPre3D's SH-DC colour; rendered as ``max(0.5 + C0 x, 0)``
                      with ``C0 = 0.28209479``, gsplat's ``sh_degree=0``)
==========  ========  =====================================================================

Initialisation (so that the first renders are sensible before any training): the output
layer's weights are small (``init_std``) and its biases give zero offsets, the identity
rotation, standard deviations of ``scale_init`` voxels and opacity ``opacity_init``; the
colour starts grey (0.5), or at the input point's colour with ``color_residual=True`` (the
prediction is then a correction of the input colour's logit / SH coefficient).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['Gaussians', 'GaussianHead', 'SH_C0', 'COLOR_MODES', 'rgb_to_sh_dc',
           'sh_dc_to_rgb']

#: the degree-0 real spherical harmonic ``1 / (2 sqrt(pi))`` (gsplat / 3DGS)
SH_C0 = 0.28209479177387814
COLOR_MODES = ('rgb', 'sh_dc')


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """(..., 3) colour in [0, 1] -> the SH DC coefficient that renders it: ``(rgb - 0.5) / C0``."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Tensor) -> Tensor:
    """(..., 3) SH DC coefficient -> rendered colour ``max(0.5 + C0 dc, 0)`` (gsplat's rule)."""
    return (0.5 + SH_C0 * dc).clamp(min=0.0)


@dataclass
class Gaussians:
    """N 3D Gaussians in the world frame (gsplat's conventions, see ``geo3d.rendering``).

    Attributes:
        means: (N, 3) centres.
        quats: (N, 4) unit quaternions ``(w, x, y, z)``.
        scales: (N, 3) standard deviations along the rotated axes (world units).
        opacities: (N,) in (0, 1).
        colors: (N, 3) RGB in [0, 1], or (N, 1, 3) SH DC coefficients when ``sh_degree == 0``.
        sh_degree: None for plain RGB, 0 for SH DC colours.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor
    sh_degree: int | None = None

    @property
    def num(self) -> int:
        return int(self.means.shape[0])

    def select(self, index: slice | Tensor) -> 'Gaussians':
        """The Gaussians at ``index`` (a slice, (K,) indices or an (N,) bool mask)."""
        return Gaussians(**{f.name: getattr(self, f.name)[index] for f in fields(self)
                            if f.name != 'sh_degree'}, sh_degree=self.sh_degree)

    def rgb(self) -> Tensor:
        """(N, 3) view-independent colour in [0, 1]-ish (SH DC converted)."""
        return self.colors if self.sh_degree is None else sh_dc_to_rgb(self.colors[:, 0])


@MODELS.register_module()
class GaussianHead(BaseModule):
    """Point features -> one 3D Gaussian per point (UniPre3D-style parameterisation).

    Args:
        in_channels: feature channels ``C`` (the SpUNet's finest decoder level).
        hidden_channels: width of a Linear + LayerNorm + GELU layer before the output layer;
            0 maps the features linearly.
        offset_scale: the largest centre offset per axis, in voxel sizes (UniPre3D: 0.2 m
            at 2 cm voxels for objects; here 1.5 voxels: a Gaussian stays near its voxel).
        scale_init: initial standard deviation, in voxel sizes.
        scale_range: (min, max) standard deviation, in voxel sizes (a clamp of the log).
        opacity_init: initial opacity in (0, 1).
        color_mode: ``'rgb'`` (sigmoid colour) or ``'sh_dc'`` (SH DC coefficient).
        color_residual: predict a correction of the input point colour instead of the colour.
        init_std: standard deviation of the output layer's initial weights.
        init_cfg: mmengine init config.

    ``forward(feat (N, C), anchors (N, 3), voxel_size, input_rgb (N, 3) | None)`` returns
    :class:`Gaussians` of N Gaussians.
    """

    #: output channels of the linear layer, in order
    SPLITS = (('offset', 3), ('scale', 3), ('rotation', 4), ('opacity', 1), ('color', 3))

    def __init__(self, in_channels: int, hidden_channels: int = 64, offset_scale: float = 1.5,
                 scale_init: float = 0.75, scale_range: Sequence[float] = (0.05, 4.0),
                 opacity_init: float = 0.8, color_mode: Literal['rgb', 'sh_dc'] = 'rgb',
                 color_residual: bool = False, init_std: float = 0.01,
                 init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1:
            raise ValueError(f'in_channels must be >= 1, got {in_channels}')
        if hidden_channels < 0:
            raise ValueError(f'hidden_channels must be >= 0, got {hidden_channels}')
        if offset_scale < 0:
            raise ValueError(f'offset_scale must be >= 0 (voxel sizes), got {offset_scale}')
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo < hi:
            raise ValueError(f'scale_range must be (min, max) with 0 < min < max, got '
                             f'{tuple(scale_range)}')
        if not lo <= scale_init <= hi:
            raise ValueError(f'scale_init must lie in scale_range {tuple(scale_range)}, got '
                             f'{scale_init}')
        if not 0.0 < opacity_init < 1.0:
            raise ValueError(f'opacity_init must be in (0, 1), got {opacity_init}')
        if color_mode not in COLOR_MODES:
            raise ValueError(f'color_mode must be one of {COLOR_MODES}, got {color_mode!r}')
        if init_std < 0:
            raise ValueError(f'init_std must be >= 0, got {init_std}')
        self.in_channels = in_channels
        self.offset_scale = float(offset_scale)
        self.scale_init = float(scale_init)
        self.log_scale_range = (math.log(lo), math.log(hi))
        self.opacity_init = float(opacity_init)
        self.color_mode = color_mode
        self.color_residual = bool(color_residual)
        self.init_std = float(init_std)
        if hidden_channels > 0:
            self.hidden: nn.Module = nn.Sequential(nn.Linear(in_channels, hidden_channels),
                                                   nn.LayerNorm(hidden_channels), nn.GELU())
            width = hidden_channels
        else:
            self.hidden = nn.Identity()
            width = in_channels
        self.out = nn.Linear(width, sum(c for _, c in self.SPLITS))
        self.reset_output()

    def reset_output(self) -> None:
        """Initialise the output layer (see the module docstring)."""
        nn.init.normal_(self.out.weight, 0.0, self.init_std)
        bias = torch.zeros(self.out.bias.shape)
        parts = dict(zip((n for n, _ in self.SPLITS),
                         bias.split([c for _, c in self.SPLITS])))
        parts['scale'].fill_(math.log(self.scale_init))
        parts['rotation'][0] = 1.0
        parts['opacity'].fill_(math.log(self.opacity_init / (1.0 - self.opacity_init)))
        with torch.no_grad():
            self.out.bias.copy_(bias)

    def init_weights(self) -> None:
        super().init_weights()
        self.reset_output()

    def forward(self, feat: Tensor, anchors: Tensor, voxel_size: float,
                input_rgb: Tensor | None = None) -> Gaussians:
        """Predict the Gaussians.

        Args:
            feat: (N, C) per-point features.
            anchors: (N, 3) world positions the offsets are added to (voxel centres).
            voxel_size: voxel edge in world units (offsets and scales are relative to it).
            input_rgb: (N, 3) input colours in [0, 1]; needed with ``color_residual``.

        Returns:
            :class:`Gaussians` (means (N, 3), quats (N, 4), scales (N, 3), opacities (N,),
            colors (N, 3) or (N, 1, 3) for ``'sh_dc'``).
        """
        if feat.ndim != 2 or feat.shape[1] != self.in_channels:
            raise ValueError(f'feat must be (N, {self.in_channels}), got {tuple(feat.shape)}')
        n = feat.shape[0]
        if anchors.shape != (n, 3):
            raise ValueError(f'anchors must be (N, 3) with N={n}, got {tuple(anchors.shape)}')
        if not voxel_size > 0:
            raise ValueError(f'voxel_size must be positive, got {voxel_size}')
        if self.color_residual:
            if input_rgb is None:
                raise ValueError('GaussianHead(color_residual=True) needs input_rgb (N, 3) in '
                                 '[0, 1]')
            if input_rgb.shape != (n, 3):
                raise ValueError(f'input_rgb must be (N, 3) with N={n}, got '
                                 f'{tuple(input_rgb.shape)}')
        raw = self.out(self.hidden(feat))
        off, scale, rot, opa, col = raw.split([c for _, c in self.SPLITS], dim=1)
        means = anchors + torch.tanh(off) * (self.offset_scale * voxel_size)
        scales = voxel_size * torch.exp(scale.clamp(*self.log_scale_range))
        quats = F.normalize(rot, dim=1, eps=1e-8)
        opacities = torch.sigmoid(opa[:, 0])
        if self.color_mode == 'rgb':
            if self.color_residual:
                rgb = input_rgb.to(col.dtype).clamp(1e-3, 1 - 1e-3)
                col = col + torch.log(rgb / (1 - rgb))
            return Gaussians(means, quats, scales, opacities, torch.sigmoid(col))
        if self.color_residual:
            col = col + rgb_to_sh_dc(input_rgb.to(col.dtype))
        return Gaussians(means, quats, scales, opacities, col[:, None, :], sh_degree=0)
