"""Sparse LiDAR depth maps: rasterisation (minimum depth per pixel) and the ``.npz`` file format
the converter writes and :class:`~geo3d.datasets.NuScenesDepthDataset` reads (numpy only).

File ``gt/<scene>/<camera sample_data token>.npz``:

``rows``, ``cols`` (M,) uint16   pixel of each point (``int(v)``, ``int(u)``)
``depth``          (M,) float32  camera depth z in metres (the smallest of the points in it)
``shape``          (2,) int64    (H, W) of the camera image (native resolution)
``meta``           ()  str       JSON: converter version, min_dist, lidar token, convention
"""
from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np

from geo3d.utils.io import atomic_write_bytes

__all__ = ['rasterize_min_depth', 'save_sparse_depth', 'load_sparse_depth',
           'sparse_depth_meta', 'SparseDepthError']


class SparseDepthError(RuntimeError):
    """A sparse depth file is unreadable or malformed."""


def rasterize_min_depth(u: np.ndarray, v: np.ndarray, depth: np.ndarray, height: int, width: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scatter projected points into pixels, keeping the MINIMUM depth per pixel.

    The pixel of a point is ``(int(v), int(u))`` (truncation, as the published nuScenes depth
    exports of Robust-Depth / md4all do); points outside ``[0, W) x [0, H)`` are dropped.
    nuscenes-devkit's rendering and those exports simply write points in order, so the LAST
    point wins a pixel; with a min the nearest surface wins (points seen through an occluder,
    which the LiDAR sees from 1-2 m higher than the camera, do not overwrite it).

    Args:
        u, v: (N,) pixel coordinates (devkit ``view_points`` output rows 0 and 1).
        depth: (N,) depths (> 0).
        height, width: image size.

    Returns:
        ``rows``, ``cols`` (M,) int64 of the distinct hit pixels in row-major order and their
        ``depth`` (M,) float32.
    """
    u, v, depth = (np.asarray(a).reshape(-1) for a in (u, v, depth))
    if not (u.shape == v.shape == depth.shape):
        raise ValueError(f'u, v, depth must have the same length, got {u.shape}, {v.shape}, '
                         f'{depth.shape}')
    cols = np.trunc(u).astype(np.int64)
    rows = np.trunc(v).astype(np.int64)
    keep = (u >= 0) & (v >= 0) & (cols < width) & (rows < height) & np.isfinite(depth)
    flat = rows[keep] * width + cols[keep]
    d = depth[keep].astype(np.float64)
    best = np.full(height * width, np.inf)
    np.minimum.at(best, flat, d)
    hit = np.flatnonzero(np.isfinite(best))
    return hit // width, hit % width, best[hit].astype(np.float32)


def save_sparse_depth(path: str | os.PathLike[str], rows: np.ndarray, cols: np.ndarray,
                      depth: np.ndarray, shape: tuple[int, int], meta: dict[str, Any]) -> None:
    """Write a sparse depth ``.npz`` atomically (format in the module docstring)."""
    h, w = (int(s) for s in shape)
    if h > 65535 or w > 65535:
        raise ValueError(f'image size {h}x{w} does not fit uint16 pixel indices')
    buf = io.BytesIO()
    np.savez_compressed(buf, rows=np.asarray(rows, np.uint16), cols=np.asarray(cols, np.uint16),
                        depth=np.asarray(depth, np.float32), shape=np.array([h, w], np.int64),
                        meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())


def sparse_depth_meta(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``meta`` dict of a sparse depth file, or None if it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {'rows', 'cols', 'depth', 'shape', 'meta'} <= set(z.files):
                return None
            meta = json.loads(str(z['meta']))
            meta['shape'] = [int(s) for s in z['shape']]
            meta['num_points'] = int(z['depth'].shape[0])
            return meta
    except (OSError, ValueError, EOFError, KeyError):
        return None


def load_sparse_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """The dense (H, W) float32 map of a sparse depth file (0 = no point).

    Raises:
        FileNotFoundError: no such file.
        SparseDepthError: unreadable, or indices outside the stored shape.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'missing ground-truth depth file {path}')
    try:
        with np.load(path, allow_pickle=False) as z:
            rows, cols = z['rows'].astype(np.int64), z['cols'].astype(np.int64)
            depth = z['depth'].astype(np.float32)
            h, w = (int(s) for s in z['shape'])
    except (OSError, ValueError, EOFError, KeyError) as e:
        raise SparseDepthError(f'cannot read ground-truth depth file {path}: {e}') from e
    if not (rows.shape == cols.shape == depth.shape) or \
            (rows.size and (rows.max() >= h or cols.max() >= w)):
        raise SparseDepthError(f'{path}: pixel indices do not fit the stored shape {h}x{w}')
    out = np.zeros((h, w), np.float32)
    out[rows, cols] = depth
    return out
