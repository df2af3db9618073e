"""Low-light image formation, shared by night and dusk.

The clean image is taken as daylight ``sRGB``; in linear light (gamma 2.2) the scene radiance
is scaled by an exposure factor and tinted (less light, coloured illumination), optionally
lit by the car's own headlights, darkened towards the corners (vignetting, cos^4 falloff
approximated by ``1 - v r^2``), then captured by a noisy sensor: photon shot noise
(Poisson with ``photons`` electrons at full scale, ``torch.poisson``) then read noise
(Gaussian), amplified by the camera's gain, which makes up for part of the lost exposure
(``gain = exposure ** -gain_power``); finally back to sRGB. Less light therefore means both a
darker image and more noise, as in real night driving footage (the sensor model of e.g.
Brooks et al., "Unprocessing images for learned raw denoising", CVPR 2019, reduced to its
two noise terms).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .base import pixel_coords, randn

__all__ = ['LowLight', 'low_light', 'headlight_irradiance', 'interpolate_cast', 'GAMMA']

GAMMA = 2.2


@dataclass(frozen=True)
class LowLight:
    """Parameters of one low-light rendering (see :func:`low_light`)."""

    exposure: float
    cast: tuple[float, float, float]
    vignette: float
    photons: float
    read_noise: float
    gain_power: float = 0.35
    headlight: float = 0.0
    top_glow: tuple[float, float, float] = (0.0, 0.0, 0.0)


def headlight_irradiance(depth: Tensor | None, height: int, width: int, like: Tensor,
                         reference_depth: float = 8.0) -> Tensor:
    """(B or 1, 1, H, W) relative irradiance of low-beam headlights.

    A beam centred on the image centre column, aimed below the horizon (Gaussian falloff in
    the image), times the inverse-square falloff ``min(1, (reference_depth / depth) ** 2)``
    with depth; without depth the image row stands in for distance (rows near the bottom
    are near).
    """
    v, u = pixel_coords(height, width, like)
    beam = torch.exp(-((u - 0.5) / 0.3) ** 2 - ((v - 0.62) / 0.2) ** 2)[None, None]
    if depth is None:
        falloff = ((v - 0.5) / 0.5).clamp(0.0, 1.0)[None, None] ** 2
    else:
        falloff = (reference_depth / depth).clamp(max=1.0) ** 2
    return beam * falloff


def low_light(image: Tensor, depth: Tensor | None, p: LowLight,
              generator: torch.Generator) -> Tensor:
    """Render ``image`` (B, 3, H, W) in [0, 1] under the low light ``p`` -> (B, 3, H, W)."""
    b, _, h, w = image.shape
    lin = image.clamp(0.0, 1.0) ** GAMMA
    light = torch.tensor(p.cast, dtype=image.dtype, device=image.device).view(1, 3, 1, 1) * \
        p.exposure
    if p.headlight > 0:
        warm = torch.tensor((1.0, 0.95, 0.85), dtype=image.dtype, device=image.device)
        light = light + p.headlight * warm.view(1, 3, 1, 1) * \
            headlight_irradiance(depth, h, w, image)
    lin = lin * light
    v, u = pixel_coords(h, w, image)
    if any(p.top_glow):
        glow = torch.tensor(p.top_glow, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        lin = lin + glow * ((1.0 - v) ** 4)[None, None] * p.exposure
    r2 = ((u - 0.5) ** 2 + (v - 0.5) ** 2) / 0.5
    lin = lin * (1.0 - p.vignette * r2)[None, None]
    # sensor: shot noise (Poisson electrons), read noise, then the gain
    electrons = torch.poisson((lin.clamp_min(0.0) * p.photons).to(generator.device),
                              generator=generator).to(lin)
    signal = electrons / p.photons + p.read_noise * randn(lin.shape, generator, lin)
    gain = p.exposure ** -p.gain_power
    return (signal * gain).clamp(0.0, 1.0) ** (1.0 / GAMMA)


def interpolate_cast(cast: Sequence[float], strength: float) -> tuple[float, float, float]:
    """``lerp((1, 1, 1), cast, strength)``."""
    return tuple(1.0 + strength * (c - 1.0) for c in cast)  # type: ignore[return-value]
