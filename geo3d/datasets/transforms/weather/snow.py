"""Snow: falling flakes of several sizes in depth layers, whitening and snow haze.

1. whitening: the scene is lifted towards white as ImageNet-C's snow does (Hendrycks &
   Dietterich, ICLR 2019: ``lerp(x, max(x, 1.5 * grey + 0.5), w)``), ``w`` per severity;
2. snow haze: Koschmieder fog with a white airlight and the snowfall's visibility;
3. flakes in depth layers (:mod:`.particles`): a flake of ``flake_size`` metres at distance
   ``z`` is a Gaussian blob of ``f * size / z`` pixels (kornia's ``gaussian_blur2d``), slightly
   drawn out by its fall during the exposure (kornia's ``motion_blur``), hidden where the
   scene is nearer; near layers: few large flakes, far layers: many tiny ones.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from kornia.color import rgb_to_grayscale
from kornia.filters import gaussian_blur2d, motion_blur
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, randn, severity_value
from .fog import koschmieder, visibility_to_beta
from .particles import KITTI_FOCAL, composite_layer, occlusion_mask, sparse_impulses

__all__ = ['SnowCorruption']


@TRANSFORMS.register_module()
class SnowCorruption(Corruption):
    """Depth-layered snowfall with whitening and haze (see the module doc).

    Args:
        density: fraction of pixels holding a flake centre in the farthest layer, per
            severity; nearer layers hold ``layer_share`` of it.
        layer_depths: distances (m) of the flake layers, near to far.
        layer_share: relative flake density of each layer.
        layer_opacity: opacity of each layer's flakes.
        flake_size: flake diameter (m).
        fall: distance (m) a flake falls during the exposure.
        focal: focal length as a multiple of the image height (KITTI 1.92).
        whiten: whitening weight per severity.
        visibility: snow haze visibility (m) per severity.
        haze_color, flake_color: RGB of the haze and the flakes.
        far_depth: depth given to pixels without valid depth (sky).

    ``depth`` (B, 1, H, W) in metres is required.
    """

    name = 'snow'
    needs_depth = True

    def __init__(self, density: Sequence[float] = (0.004, 0.008, 0.013, 0.02, 0.03),
                 layer_depths: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
                 layer_share: Sequence[float] = (0.03, 0.08, 0.2, 0.45, 0.8, 1.0),
                 layer_opacity: Sequence[float] = (0.95, 0.9, 0.8, 0.65, 0.5, 0.35),
                 flake_size: float = 0.02, fall: float = 0.03, focal: float = KITTI_FOCAL,
                 whiten: Sequence[float] = (0.1, 0.18, 0.25, 0.32, 0.4),
                 visibility: Sequence[float] = (900.0, 500.0, 300.0, 180.0, 100.0),
                 haze_color: Sequence[float] = (0.85, 0.87, 0.9),
                 flake_color: Sequence[float] = (0.96, 0.96, 0.98),
                 far_depth: float = 1000.0) -> None:
        for arg, v in (('density', density), ('whiten', whiten), ('visibility', visibility)):
            if len(v) != 5:
                raise ValueError(f'SnowCorruption: {arg} needs one value per severity 1..5, '
                                 f'got {v}')
        if not len(layer_depths) == len(layer_share) == len(layer_opacity) or \
                not layer_depths:
            raise ValueError('SnowCorruption: layer_depths, layer_share and layer_opacity '
                             'must have the same non-zero length')
        self.density = tuple(density)
        self.layer_depths = tuple(float(z) for z in layer_depths)
        self.layer_share = tuple(layer_share)
        self.layer_opacity = tuple(layer_opacity)
        self.flake_size = float(flake_size)
        self.fall = float(fall)
        self.focal = float(focal)
        self.whiten = tuple(whiten)
        self.visibility = tuple(visibility)
        self.haze_color = tuple(haze_color)
        self.flake_color = tuple(flake_color)
        self.far_depth = float(far_depth)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        assert depth is not None
        b, _, h, w = image.shape
        grey = rgb_to_grayscale(image)
        bright = torch.maximum(image, (1.5 * grey + 0.5).clamp(max=1.0).expand_as(image))
        out = torch.lerp(image, bright, severity_value(self.whiten, severity))
        beta = visibility_to_beta(severity_value(self.visibility, severity))
        out = koschmieder(out, depth, beta, self.haze_color)

        focal_px = self.focal * h
        density = severity_value(self.density, severity)
        drift = 10.0 * randn((b,), generator, image)  # per-image wind (degrees off vertical)
        order = sorted(range(len(self.layer_depths)), key=lambda i: -self.layer_depths[i])
        for i in order:
            z = self.layer_depths[i]
            flakes = sparse_impulses(b, h, w, density * self.layer_share[i], generator, image,
                                     low=0.6)
            sigma = max(0.5, 0.5 * focal_px * self.flake_size / z)
            ksize = 2 * int(math.ceil(3 * sigma)) + 1
            flakes = gaussian_blur2d(flakes, (ksize, ksize), (sigma, sigma)) * \
                (2 * math.pi * sigma ** 2)
            length = focal_px * self.fall / z
            if length >= 2:
                mk = 2 * int(math.ceil(length / 2)) + 1
                angle = 90.0 + drift
                # the blob (~2.5 sigma wide) is smeared over mk pixels: restore its peak
                flakes = motion_blur(flakes, mk, angle, torch.zeros_like(angle)) * \
                    max(1.0, mk / (2.5 * sigma))
            flakes = flakes * occlusion_mask(depth, z)
            out = composite_layer(out, flakes, self.flake_color, self.layer_opacity[i])
        return out
