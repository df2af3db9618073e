"""Falling particles (rain drops, snow flakes) in depth layers, shared by rain and snow.

A pinhole camera of focal length ``f`` pixels sees a particle of size ``s`` metres at distance
``z`` as ``f * s / z`` pixels, and its fall during the exposure (speed ``v``, time ``e``) as a
streak of ``f * v * e / z`` pixels. The particles are therefore drawn in a few depth layers:
nearer layers hold fewer, larger, longer, more opaque particles; farther layers many small
faint ones; a particle of layer ``z`` is hidden wherever the scene is nearer than ``z``
(occlusion by depth). This is the layered approximation of physically based rain renderers
(Garg & Nayar, "Photorealistic rendering of rain streaks", SIGGRAPH 2006; Halder et al.,
"Physics-based rendering for improving robustness to rain", ICCV 2019, the renderer used by
Robust-Depth) without their particle simulation and streak database.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import rand

__all__ = ['sparse_impulses', 'occlusion_mask', 'composite_layer', 'KITTI_FOCAL']

#: focal length as a multiple of the image height (KITTI: fy / H = 721 / 375 ~ 1.92)
KITTI_FOCAL = 1.92


def sparse_impulses(batch: int, height: int, width: int, density: float,
                    generator: torch.Generator, like: Tensor, low: float = 0.4) -> Tensor:
    """(B, 1, H, W) particle centres: value U(low, 1) with probability ``density``, else 0."""
    u = rand((batch, 1, height, width), generator, like)
    value = rand((batch, 1, height, width), generator, like)
    return torch.where(u < density, low + (1.0 - low) * value, torch.zeros_like(u))


def occlusion_mask(depth: Tensor | None, layer_depth: float,
                   softness: float = 0.1) -> Tensor | float:
    """Visibility of a particle layer at ``layer_depth`` metres in front of the scene: ~1 where
    the scene is farther than the layer, ~0 where nearer (a soft step of relative width
    ``softness``); 1 without depth."""
    if depth is None:
        return 1.0
    return torch.sigmoid((depth - layer_depth) / (softness * layer_depth))


def composite_layer(image: Tensor, coverage: Tensor, color: tuple[float, float, float],
                    opacity: float) -> Tensor:
    """Alpha-blend a particle layer: ``image * (1 - a) + color * a``, ``a = opacity *
    clamp(coverage, 0, 1)``; ``coverage`` (B, 1, H, W)."""
    a = opacity * coverage.clamp(0.0, 1.0)
    c = torch.tensor(color, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return image * (1.0 - a) + c * a
