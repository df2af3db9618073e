"""Cityscapes camera calibration (``*_camera.json``) and disparity maps (``*_disparity.png``).

Formats (Cityscapes README and ``csCalibration.pdf``, https://github.com/mcordts/cityscapesScripts):

* ``camera/<split>/<city>/<stem>_camera.json``: ``{"extrinsic": {"baseline", "pitch", "roll",
  "x", "y", "yaw", "z"}, "intrinsic": {"fx", "fy", "u0", "v0"}}``; intrinsics in pixels of the
  stored image (2048x1024), baseline in metres.
* ``disparity/<split>/<city>/<stem>_disparity.png``: 16-bit single channel; a value ``p > 0``
  is the disparity ``d = (p - 1) / 256`` pixels, ``p = 0`` marks an invalid pixel.
  Depth in metres: ``z = baseline * fx / d`` (ManyDepth's ``gt_depths_cityscapes`` were made
  this way, "converted from pixel disparities using intrinsics and the known baseline").
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .common import CROP_BOTTOM, crop_height

__all__ = ['CityscapesCamera', 'read_camera_json', 'normalized_intrinsics', 'read_disparity',
           'disparity_to_depth']


@dataclass(frozen=True)
class CityscapesCamera:
    """The fields of a ``*_camera.json`` that depth needs (pixels / metres)."""
    fx: float
    fy: float
    u0: float
    v0: float
    baseline: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def read_camera_json(path: str | os.PathLike[str]) -> CityscapesCamera:
    """Parse a Cityscapes ``*_camera.json``.

    Raises:
        ValueError: naming ``path`` and the problem (unreadable, not JSON, a missing or
            non-positive field).
    """
    try:
        with open(path) as f:
            obj: Any = json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f'{path}: not a readable JSON file: {e}') from None
    values = {}
    for group, key in (('intrinsic', 'fx'), ('intrinsic', 'fy'), ('intrinsic', 'u0'),
                       ('intrinsic', 'v0'), ('extrinsic', 'baseline')):
        try:
            v = float(obj[group][key])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f'{path}: missing or non-numeric "{group}.{key}"') from None
        if not np.isfinite(v) or (key in ('fx', 'fy', 'baseline') and v <= 0):
            raise ValueError(f'{path}: "{group}.{key}" must be finite and positive, got {v}')
        values[key] = v
    return CityscapesCamera(**values)


def normalized_intrinsics(cam: CityscapesCamera, width: int, height: int,
                          crop_bottom: float = CROP_BOTTOM) -> list[float]:
    """``[fx / W, fy / H', u0 / W, v0 / H']`` of the image with its bottom ``crop_bottom`` cut,
    ``H' = round(H (1 - crop_bottom))`` (768 of 1024).

    Cutting rows at the bottom keeps the pixel origin, so ``fx, fy, u0, v0`` stay in pixels and
    only the normalisation changes (ManyDepth's ``cityscapes_evaldataset.py`` divides by 2048 and
    1024 * 0.75). Normalised intrinsics do not depend on a later resize.
    """
    hc = crop_height(height, crop_bottom)
    return [cam.fx / width, cam.fy / hc, cam.u0 / width, cam.v0 / hc]


def read_disparity(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W) uint16 raw values of a Cityscapes disparity PNG.

    Raises:
        ValueError: naming ``path``: not an image, or not a single 16-bit channel.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
                raise ValueError(f'{path}: disparity must be a 16-bit single-channel PNG, got '
                                 f'mode {im.mode}')
            arr = np.asarray(im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f'{path}: corrupt disparity PNG: {e}') from None
    if arr.ndim != 2 or arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
        raise ValueError(f'{path}: disparity values out of the uint16 range')
    return arr.astype(np.uint16)


def disparity_to_depth(raw: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Depth (metres) from raw Cityscapes disparity values.

    Args:
        raw: (H, W) uint16 PNG values ``p``.
        baseline: stereo baseline (m), ``extrinsic.baseline``.
        fx: focal length in pixels of the disparity map (``intrinsic.fx``).

    Returns:
        (H, W) float32 ``baseline * fx / d`` with ``d = (p - 1) / 256``, computed in float64;
        0 where the depth is unknown: ``p = 0`` (invalid) and ``p = 1`` (``d = 0``, infinitely
        far).
    """
    p = np.asarray(raw, dtype=np.float64)
    d = (p - 1.0) / 256.0
    valid = d > 0
    depth = np.zeros(p.shape, dtype=np.float64)
    depth[valid] = baseline * fx / d[valid]
    return depth.astype(np.float32)
