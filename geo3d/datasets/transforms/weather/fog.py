"""Fog from depth with Koschmieder's law.

``I_fog = I * t + A * (1 - t)``, ``t = exp(-beta * depth)`` (Koschmieder 1924; the model of
Foggy Cityscapes, Sakaridis et al., IJCV 2018, and of Robust-Depth's ``fogRender``,
Saunders et al., ICCV 2023, github.com/kieran514/robustdepth). ``beta`` is the extinction
coefficient: the meteorological visibility (where the contrast of a black object falls to
2 %) is ``V = -ln(0.02) / beta ~ 3.912 / beta``. Severity picks the visibility; as
Robust-Depth, beta can be modulated over the image by smooth noise (patchy fog).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, severity_value, smooth_noise

__all__ = ['FogCorruption', 'koschmieder', 'visibility_to_beta', 'FOG_VISIBILITY']

#: meteorological visibility (m) per severity 1..5 (Foggy Cityscapes uses 600/300/150 m)
FOG_VISIBILITY = (300.0, 150.0, 80.0, 45.0, 25.0)
_LN_CONTRAST = 3.912  # -ln(0.02)


def visibility_to_beta(visibility: float) -> float:
    """Extinction coefficient (1/m) of a meteorological visibility (m)."""
    if visibility <= 0:
        raise ValueError(f'visibility must be > 0 m, got {visibility}')
    return _LN_CONTRAST / float(visibility)


def koschmieder(image: Tensor, depth: Tensor, beta: float | Tensor,
                airlight: Sequence[float] | Tensor) -> Tensor:
    """``image * t + airlight * (1 - t)`` with ``t = exp(-beta * depth)``.

    Args:
        image: (B, 3, H, W) in [0, 1].
        depth: (B, 1, H, W) metres.
        beta: extinction (1/m), a number or a tensor broadcastable to (B, 1, H, W).
        airlight: RGB colour of the atmospheric light, 3 numbers or a (3,) / (B, 3, 1, 1)
            tensor.

    Returns:
        (B, 3, H, W).
    """
    t = torch.exp(-beta * depth)
    a = torch.as_tensor(airlight, dtype=image.dtype, device=image.device)
    if a.ndim == 1:
        a = a.view(1, 3, 1, 1)
    return image * t + a * (1.0 - t)


@TRANSFORMS.register_module()
class FogCorruption(Corruption):
    """Homogeneous or patchy fog from depth (Koschmieder's law, see the module doc).

    Args:
        visibility: meteorological visibility (m) per severity 1..5 (default
            ``FOG_VISIBILITY``, 300 m to 25 m).
        airlight: RGB of the fog (a light grey-blue).
        heterogeneity: relative std of beta over the image (smooth noise, blobs of
            ``noise_cell`` x H pixels); 0 = homogeneous fog (exactly Koschmieder).
        noise_cell: size of the fog patches as a fraction of the image height.
        far_depth: depth given to pixels without valid depth (sky).

    ``depth`` (B, 1, H, W) in metres is required.
    """

    name = 'fog'
    needs_depth = True

    def __init__(self, visibility: Sequence[float] = FOG_VISIBILITY,
                 airlight: Sequence[float] = (0.80, 0.82, 0.85), heterogeneity: float = 0.2,
                 noise_cell: float = 0.6, far_depth: float = 1000.0) -> None:
        if len(visibility) != 5 or any(v <= 0 for v in visibility):
            raise ValueError(f'FogCorruption: visibility must be 5 positive distances (m), '
                             f'got {visibility}')
        if len(airlight) != 3 or any(not 0 <= a <= 1 for a in airlight):
            raise ValueError(f'FogCorruption: airlight must be 3 values in [0, 1], got '
                             f'{airlight}')
        if not 0 <= heterogeneity < 1:
            raise ValueError(f'FogCorruption: heterogeneity must be in [0, 1), got '
                             f'{heterogeneity}')
        self.visibility = tuple(float(v) for v in visibility)
        self.airlight = tuple(float(a) for a in airlight)
        self.heterogeneity = float(heterogeneity)
        self.noise_cell = float(noise_cell)
        self.far_depth = float(far_depth)

    def beta(self, severity: int) -> float:
        """Mean extinction coefficient (1/m) of a severity."""
        return visibility_to_beta(severity_value(self.visibility, severity))

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        assert depth is not None
        beta: float | Tensor = self.beta(severity)
        if self.heterogeneity > 0:
            b, _, h, w = image.shape
            noise = smooth_noise(b, h, w, generator, image, cell=self.noise_cell)
            beta = beta * (1.0 + self.heterogeneity * noise).clamp_min(0.0)
        return koschmieder(image, depth, beta, self.airlight)
