"""Rain: depth-aware streaks, wet darkening and the haze of the rain.

Three parts, in this order:

1. wet, overcast scene: darker and less saturated (``darken``, ``desaturate`` per severity);
2. rain haze: light fog by Koschmieder's law with the rain's visibility (heavy rain scatters
   like fog, e.g. ~150 m at 50 mm/h);
3. streaks in depth layers (:mod:`.particles`): a drop at distance ``z`` falls ``v * e`` metres
   during the exposure, a streak of ``f * v * e / z`` pixels drawn with kornia's
   ``motion_blur`` (an oriented line kernel; the angle is the per-image wind tilt), thicker,
   longer and more opaque near the camera, thin and faint far away, hidden where the scene is
   nearer than the drop.

A fast on-the-fly stand-in for Robust-Depth's physically rendered rain (Saunders et al.,
ICCV 2023, which used the renderer of Halder et al., ICCV 2019, offline).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from kornia.filters import motion_blur
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, randn, severity_value
from .fog import koschmieder, visibility_to_beta
from .particles import KITTI_FOCAL, composite_layer, occlusion_mask, sparse_impulses

__all__ = ['RainCorruption']


@TRANSFORMS.register_module()
class RainCorruption(Corruption):
    """Depth-aware rain streaks on a wet, hazy scene (see the module doc).

    Args:
        density: fraction of pixels that start a streak in the farthest layer, per severity;
            nearer layers hold ``layer_share`` of it.
        layer_depths: distances (m) of the drop layers, near to far.
        layer_share: relative drop density of each layer.
        layer_opacity: opacity of each layer's streaks.
        fall: distance (m) a drop falls during the exposure (speed x exposure time).
        focal: focal length as a multiple of the image height (KITTI 1.92).
        tilt_std: std (degrees) of the per-image wind tilt of the streaks.
        darken, desaturate: wet-scene darkening and desaturation per severity.
        visibility: rain haze visibility (m) per severity.
        haze_color, streak_color: RGB of the haze and of the streaks.
        far_depth: depth given to pixels without valid depth (sky).

    ``depth`` (B, 1, H, W) in metres is required (occlusion and haze).
    """

    name = 'rain'
    needs_depth = True

    def __init__(self, density: Sequence[float] = (0.002, 0.004, 0.007, 0.011, 0.016),
                 layer_depths: Sequence[float] = (1.5, 3.0, 6.0, 12.0, 24.0),
                 layer_share: Sequence[float] = (0.08, 0.2, 0.45, 0.8, 1.0),
                 layer_opacity: Sequence[float] = (0.55, 0.5, 0.42, 0.35, 0.28),
                 fall: float = 0.16, focal: float = KITTI_FOCAL, tilt_std: float = 8.0,
                 darken: Sequence[float] = (0.05, 0.1, 0.15, 0.2, 0.25),
                 desaturate: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
                 visibility: Sequence[float] = (1500.0, 800.0, 450.0, 280.0, 160.0),
                 haze_color: Sequence[float] = (0.62, 0.64, 0.67),
                 streak_color: Sequence[float] = (0.85, 0.87, 0.9),
                 far_depth: float = 1000.0) -> None:
        for arg, v in (('density', density), ('darken', darken), ('desaturate', desaturate),
                       ('visibility', visibility)):
            if len(v) != 5:
                raise ValueError(f'RainCorruption: {arg} needs one value per severity 1..5, '
                                 f'got {v}')
        if not len(layer_depths) == len(layer_share) == len(layer_opacity) or \
                not layer_depths:
            raise ValueError('RainCorruption: layer_depths, layer_share and layer_opacity '
                             'must have the same non-zero length')
        self.density = tuple(density)
        self.layer_depths = tuple(float(z) for z in layer_depths)
        self.layer_share = tuple(layer_share)
        self.layer_opacity = tuple(layer_opacity)
        self.fall = float(fall)
        self.focal = float(focal)
        self.tilt_std = float(tilt_std)
        self.darken = tuple(darken)
        self.desaturate = tuple(desaturate)
        self.visibility = tuple(visibility)
        self.haze_color = tuple(haze_color)
        self.streak_color = tuple(streak_color)
        self.far_depth = float(far_depth)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        assert depth is not None
        b, _, h, w = image.shape
        # 1. wet, overcast scene
        grey = rgb_to_grayscale(image)
        out = torch.lerp(image, grey.expand_as(image), severity_value(self.desaturate, severity))
        out = out * (1.0 - severity_value(self.darken, severity))
        # 2. haze
        beta = visibility_to_beta(severity_value(self.visibility, severity))
        out = koschmieder(out, depth, beta, self.haze_color)
        # 3. streaks, far layers first
        focal_px = self.focal * h
        tilt = self.tilt_std * randn((b,), generator, image)
        density = severity_value(self.density, severity)
        order = sorted(range(len(self.layer_depths)), key=lambda i: -self.layer_depths[i])
        for i in order:
            z = self.layer_depths[i]
            drops = sparse_impulses(b, h, w, density * self.layer_share[i], generator, image)
            thickness = max(1, int(round(focal_px * 0.004 / z)))
            if thickness > 1:
                drops = F.max_pool2d(drops, (1, thickness), stride=1,
                                     padding=(0, thickness // 2))[..., :w]
            length = focal_px * self.fall / z
            ksize = max(3, 2 * int(math.ceil(length / 2)) + 1)
            angle = 90.0 + tilt + 3.0 * randn((b,), generator, image)
            streaks = motion_blur(drops, ksize, angle, torch.zeros_like(angle)) * ksize
            streaks = streaks * occlusion_mask(depth, z)
            out = composite_layer(out, streaks, self.streak_color, self.layer_opacity[i])
        return out
