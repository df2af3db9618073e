"""Night: little, bluish light, vignetting, strong sensor noise, optional headlights.

Robust-Depth (Saunders et al., ICCV 2023) translated day to night with CoMoGAN offline; here
night is rendered from the clean image by the low-light model of :mod:`.lighting`: exposure
falls and the noise grows with severity (shot noise, then read noise), the illumination is a
cold blue cast, and the car's low-beam headlights light the road ahead with an inverse-square
falloff in depth (image rows stand in for depth when none is given).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, severity_value
from .lighting import LowLight, low_light

__all__ = ['NightCorruption']


@TRANSFORMS.register_module()
class NightCorruption(Corruption):
    """Night driving (see the module doc).

    Args:
        exposure: linear light left, per severity 1..5.
        photons: electrons at full scale per severity (fewer = more shot noise).
        read_noise: read-noise std (linear units, before the gain) per severity.
        vignette: corner darkening per severity.
        cast: RGB tint of the night illumination (blue).
        headlight: headlight strength relative to daylight (0 disables them).
        gain_power: the camera's gain is ``exposure ** -gain_power``.

    ``depth`` (B, 1, H, W) in metres is optional (headlight falloff).
    """

    name = 'night'
    uses_depth = True

    def __init__(self, exposure: Sequence[float] = (0.14, 0.08, 0.045, 0.025, 0.014),
                 photons: Sequence[float] = (3000.0, 1500.0, 800.0, 400.0, 200.0),
                 read_noise: Sequence[float] = (0.0005, 0.001, 0.0015, 0.002, 0.003),
                 vignette: Sequence[float] = (0.3, 0.35, 0.4, 0.45, 0.5),
                 cast: Sequence[float] = (0.65, 0.8, 1.25), headlight: float = 0.6,
                 gain_power: float = 0.35) -> None:
        for arg, v in (('exposure', exposure), ('photons', photons),
                       ('read_noise', read_noise), ('vignette', vignette)):
            if len(v) != 5:
                raise ValueError(f'NightCorruption: {arg} needs one value per severity 1..5, '
                                 f'got {v}')
        if len(cast) != 3:
            raise ValueError(f'NightCorruption: cast must be RGB, got {cast}')
        self.exposure = tuple(exposure)
        self.photons = tuple(photons)
        self.read_noise = tuple(read_noise)
        self.vignette = tuple(vignette)
        self.cast = tuple(float(c) for c in cast)
        self.headlight = float(headlight)
        self.gain_power = float(gain_power)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        p = LowLight(exposure=severity_value(self.exposure, severity), cast=self.cast,
                     vignette=severity_value(self.vignette, severity),
                     photons=severity_value(self.photons, severity),
                     read_noise=severity_value(self.read_noise, severity),
                     gain_power=self.gain_power, headlight=self.headlight)
        return low_light(image, depth, p, generator)
