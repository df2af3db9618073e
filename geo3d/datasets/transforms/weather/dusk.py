"""Dusk: dimmer, warmer light with a glow low in the sky, mild noise and vignetting.

Robust-Depth's dusk/dawn images come from CoMoGAN offline (Saunders et al., ICCV 2023); here
they are rendered by the low-light model of :mod:`.lighting` with an orange cast whose
strength, the loss of light and the sensor noise grow with severity.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, severity_value
from .lighting import LowLight, interpolate_cast, low_light

__all__ = ['DuskCorruption']


@TRANSFORMS.register_module()
class DuskCorruption(Corruption):
    """Dusk (see the module doc).

    Args:
        exposure: linear light left, per severity 1..5.
        cast_strength: how far the illumination moves to ``cast``, per severity.
        photons, read_noise, vignette: sensor and lens per severity (as
            :class:`NightCorruption`).
        cast: RGB tint at full strength (orange).
        glow: RGB of the glow of the low sun added towards the top of the image.
        gain_power: the camera's gain is ``exposure ** -gain_power``.
    """

    name = 'dusk'

    def __init__(self, exposure: Sequence[float] = (0.7, 0.5, 0.36, 0.26, 0.18),
                 cast_strength: Sequence[float] = (0.4, 0.55, 0.7, 0.85, 1.0),
                 photons: Sequence[float] = (20000.0, 12000.0, 7000.0, 4000.0, 2500.0),
                 read_noise: Sequence[float] = (0.0002, 0.0003, 0.0005, 0.0007, 0.001),
                 vignette: Sequence[float] = (0.1, 0.15, 0.2, 0.25, 0.3),
                 cast: Sequence[float] = (1.15, 0.8, 0.5),
                 glow: Sequence[float] = (0.5, 0.25, 0.08), gain_power: float = 0.35) -> None:
        for arg, v in (('exposure', exposure), ('cast_strength', cast_strength),
                       ('photons', photons), ('read_noise', read_noise),
                       ('vignette', vignette)):
            if len(v) != 5:
                raise ValueError(f'DuskCorruption: {arg} needs one value per severity 1..5, '
                                 f'got {v}')
        if len(cast) != 3 or len(glow) != 3:
            raise ValueError(f'DuskCorruption: cast and glow must be RGB, got {cast}, {glow}')
        self.exposure = tuple(exposure)
        self.cast_strength = tuple(cast_strength)
        self.photons = tuple(photons)
        self.read_noise = tuple(read_noise)
        self.vignette = tuple(vignette)
        self.cast = tuple(float(c) for c in cast)
        self.glow = tuple(float(g) for g in glow)
        self.gain_power = float(gain_power)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        strength = severity_value(self.cast_strength, severity)
        p = LowLight(exposure=severity_value(self.exposure, severity),
                     cast=interpolate_cast(self.cast, strength),
                     vignette=severity_value(self.vignette, severity),
                     photons=severity_value(self.photons, severity),
                     read_noise=severity_value(self.read_noise, severity),
                     gain_power=self.gain_power,
                     top_glow=tuple(strength * g for g in self.glow))  # type: ignore[arg-type]
        return low_light(image, depth, p, generator)
