"""Velodyne scans and the sparse depth maps projected from them (Eigen-split ground truth).

The projection follows the conventions of Monodepth2's ``kitti_utils.generate_depth_map``
(Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019,
https://github.com/nianticlabs/monodepth2), re-implemented here:

1. keep scan points with velodyne ``x >= 0`` (in front of the sensor);
2. project with ``P = P_rect_0c · R_rect_00 · [R|T]_velo->cam0`` and divide by the third row;
3. round pixel coordinates with :func:`numpy.round` (half to even), then **subtract 1**
   (parity with the MATLAB devkit), keep ``0 <= u < W``, ``0 <= v < H``;
4. the stored value is the velodyne forward distance ``x`` (``depth='velo_x'``, what
   ``export_gt_depth.py --split eigen`` stores) or the projective depth, i.e. the third row of
   ``P · X`` = rectified camera z plus ``P_rect[2, 3]`` (``depth='cam_z'``, what Monodepth2's
   training-time loader uses);
5. when several points fall on one pixel the **nearest** (smallest stored value) wins;
6. negative values are clamped to 0; empty pixels are 0.

Differences from the reference, both deliberate and both outside the Eigen evaluation crop:

* the reference finds collisions with ``sub2ind = row * (W - 1) + col - 1``, which is not a
  true linear index: pixel ``(r, W - 1)`` aliases ``(r + 1, 0)``. For such an aliased pair it
  writes the pair's minimum at the first point's pixel and leaves the other pixel with whatever
  the plain scatter wrote last. Here every pixel gets the minimum of exactly its own points.
  Only columns ``0`` and ``W - 1`` can differ; the Garg crop used for evaluation keeps columns
  ``[0.0359 W, 0.9641 W)``, so metrics are identical.
* points whose projective depth is ``<= 0`` (behind the image plane although ``x_velo >= 0``;
  only possible within ~0.27 m of the sensor) are dropped instead of being projected through a
  negative depth.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
from .calib import KittiCalib
from .common import GT_DEPTH_TYPES, DriveError, import_pykitti_utils

load_velo_scan = import_pykitti_utils().load_velo_scan

DepthType = Literal['velo_x', 'cam_z']


def check_velodyne_file(path: str | os.PathLike[str], drive: str = '') -> int:
    """Cheap validity check (size only) of a velodyne ``.bin``; returns the number of points.

    Raises:
        DriveError: missing file, empty file or a size that is not a multiple of 16 bytes
            (float32 x, y, z, reflectance per point).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise DriveError(drive, path, 'missing velodyne scan') from None
    if size == 0 or size % 16:
        raise DriveError(drive, path, f'corrupt velodyne scan: {size} bytes is not a positive '
                                      'multiple of 16 (float32 x y z reflectance per point)')
    return size // 16


def load_velodyne(path: str | os.PathLike[str], drive: str = '') -> np.ndarray:
    """Load a KITTI velodyne scan ``(N, 4)`` float32 ``x y z reflectance`` (pykitti's reader).

    Raises:
        DriveError: naming the file when it is missing or its size is not ``N * 16`` bytes.
    """
    check_velodyne_file(path, drive)
    try:
        return load_velo_scan(str(path))
    except (OSError, ValueError) as e:
        raise DriveError(drive, path, f'cannot read velodyne scan: {e}') from None


def project_velodyne_to_depth(points: np.ndarray, velo_to_image: np.ndarray,
                              height: int, width: int, depth: DepthType = 'velo_x') -> np.ndarray:
    """Sparse depth map of one scan (conventions in the module docstring).

    Args:
        points: (N, 3+) velodyne points, columns x (forward), y (left), z (up), ...
        velo_to_image: (3, 4) projection velodyne -> image (:meth:`KittiCalib.velo_to_image`).
        height, width: the image size.
        depth: ``'velo_x'`` (Eigen ground truth) or ``'cam_z'`` (projective depth).

    Returns:
        (height, width) float32 map, 0 where no point projects.
    """
    if depth not in GT_DEPTH_TYPES:
        raise ValueError(f'depth must be one of {GT_DEPTH_TYPES}, got {depth!r}')
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f'points must be (N, >=3), got shape {points.shape}')
    velo_to_image = np.asarray(velo_to_image, dtype=np.float64)
    if velo_to_image.shape != (3, 4):
        raise ValueError(f'velo_to_image must be (3, 4), got {velo_to_image.shape}')
    xyz = points[:, :3].astype(np.float64)
    xyz = xyz[xyz[:, 0] >= 0]
    proj = xyz @ velo_to_image[:, :3].T + velo_to_image[:, 3]
    z = proj[:, 2]
    front = z > 0
    xyz, proj, z = xyz[front], proj[front], z[front]
    col = np.round(proj[:, 0] / z) - 1
    row = np.round(proj[:, 1] / z) - 1
    value = xyz[:, 0] if depth == 'velo_x' else z
    inside = (col >= 0) & (row >= 0) & (col < width) & (row < height) & np.isfinite(value)
    flat = row[inside].astype(np.int64) * width + col[inside].astype(np.int64)
    value = value[inside]
    out = np.zeros(height * width, dtype=np.float64)
    if flat.size:
        order = np.lexsort((value, flat))  # by pixel, then nearest first
        flat, value = flat[order], value[order]
        first = np.ones(flat.size, dtype=bool)
        first[1:] = flat[1:] != flat[:-1]
        out[flat[first]] = value[first]
    out[out < 0] = 0
    return out.reshape(height, width).astype(np.float32)


def generate_depth_map(calib: KittiCalib, velo_path: str | os.PathLike[str], cam: int = 2,
                       depth: DepthType = 'velo_x', drive: str = '') -> np.ndarray:
    """Ground-truth depth of one frame: the scan at ``velo_path`` projected into ``cam``.

    The map has the rectified image size ``S_rect_0c`` of ``cam`` (Monodepth2 always uses
    ``S_rect_02``; the two are equal in every KITTI date).

    Returns:
        (H, W) float32, 0 where no point projects.
    """
    points = load_velodyne(velo_path, drive)
    w, h = calib.image_size[cam]
    return project_velodyne_to_depth(points, calib.velo_to_image(cam), h, w, depth)
