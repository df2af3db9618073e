"""A Velodyne HDL-64E-like scanner: 64 elevation rings (+2 to -24.8 degrees, as the sensor on
the KITTI car) times ``azimuth_steps`` columns over 360 degrees, ray-cast against the same
scene as the cameras. Points are returned in the velodyne frame (x forward, y left, z up,
metres) with a reflectance, as KITTI's ``velodyne_points/data/%010d.bin`` (float32, N x 4).
The sweep is treated as instantaneous (no rolling-sweep motion distortion).
"""
from __future__ import annotations

import math

import numpy as np

from .materials import lidar_reflectance
from .raycast import cast_rays, primitive_corners
from .scene import StreetScene

__all__ = ['HDL64_ELEVATIONS_DEG', 'velodyne_directions', 'lidar_candidates', 'scan_velodyne']

HDL64_ELEVATIONS_DEG = np.linspace(2.0, -24.8, 64)


def velodyne_directions(azimuth_steps: int, elevations_deg: np.ndarray = HDL64_ELEVATIONS_DEG
                        ) -> np.ndarray:
    """(R, C, 3) unit ray directions in the velodyne frame: ring ``r`` at elevation
    ``elevations_deg[r]``, column ``c`` at azimuth ``-pi + (c + 0.5) 2 pi / C`` (from +x towards
    +y)."""
    if azimuth_steps < 1:
        raise ValueError(f'velodyne_directions: azimuth_steps must be >= 1, got {azimuth_steps}')
    az = -math.pi + (np.arange(azimuth_steps) + 0.5) * (2 * math.pi / azimuth_steps)
    el = np.radians(np.asarray(elevations_deg, np.float64))
    ce, se = np.cos(el)[:, None], np.sin(el)[:, None]
    return np.stack([ce * np.cos(az)[None], ce * np.sin(az)[None],
                     np.broadcast_to(se, (len(el), azimuth_steps))], -1)


_PAIRS = np.array([(i, j) for i in range(8) for j in range(i + 1, 8)])


def lidar_candidates(corners: np.ndarray, T_velo_world: np.ndarray, elevations_deg: np.ndarray,
                     azimuth_steps: int) -> list[np.ndarray | None]:
    """Per primitive, flat ray indices (``ring * C + column``) that may hit it (None = all).

    Works on each primitive's convex bound given by 8 corners, in the sensor frame. Columns:
    if the largest cyclic gap between the corners' azimuths is at least pi, the sensor is
    outside the bound's ground projection and the azimuth range is the complement of that
    gap (exact); otherwise every column. Rings: elevations between ``atan2(z_min, rho)`` and
    ``atan2(z_max, rho)`` over horizontal distances ``rho`` from the distance to the projected
    hull (the minimum over all corner-pair segments) to the farthest corner.
    """
    pts = corners @ T_velo_world[:3, :3].T + T_velo_world[:3, 3]  # (P, 8, 3)
    el_all = np.radians(np.asarray(elevations_deg, np.float64))
    step = 2 * math.pi / azimuth_steps
    xy = pts[..., :2]
    a, b = xy[:, _PAIRS[:, 0]], xy[:, _PAIRS[:, 1]]  # (P, 28, 2)
    ab = b - a
    t = np.clip(-(a * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    rho_min = np.linalg.norm(a + t[..., None] * ab, axis=-1).min(1)
    rho_max = np.linalg.norm(xy, axis=-1).max(1)
    z_min, z_max = pts[..., 2].min(1), pts[..., 2].max(1)
    az = np.sort(np.arctan2(xy[..., 1], xy[..., 0]), axis=1)  # (P, 8)
    gaps = np.diff(np.concatenate([az, az[:, :1] + 2 * math.pi], 1), axis=1)
    out: list[np.ndarray | None] = []
    for j in range(len(pts)):
        g = int(gaps[j].argmax())
        outside = gaps[j, g] >= math.pi
        lo_rho = rho_min[j] if outside else 0.0
        el_hi = math.atan2(z_max[j], lo_rho if z_max[j] >= 0 else rho_max[j])
        el_lo = math.atan2(z_min[j], rho_max[j] if z_min[j] >= 0 else lo_rho)
        rows = np.flatnonzero((el_all >= el_lo - 1e-9) & (el_all <= el_hi + 1e-9))
        if len(rows) == 0:
            out.append(np.zeros(0, np.int64))
            continue
        if outside:  # the covered arc runs from az[g + 1] round to az[g]
            a0 = az[j, (g + 1) % 8]
            a1 = az[j, g] + (2 * math.pi if g + 1 < 8 else 0.0)
            c0 = int(math.floor((a0 + math.pi) / step - 0.5))
            c1 = int(math.ceil((a1 + math.pi) / step - 0.5))
            cols = np.arange(c0, c1 + 1) % azimuth_steps
        else:
            cols = np.arange(azimuth_steps)
        if len(rows) == len(el_all) and len(cols) >= azimuth_steps:
            out.append(None)
        else:
            out.append((rows[:, None] * azimuth_steps + cols[None]).ravel())
    return out


def scan_velodyne(scene: StreetScene, time: float, T_world_velo: np.ndarray,
                  azimuth_steps: int = 1024,
                  elevations_deg: np.ndarray = HDL64_ELEVATIONS_DEG,
                  min_range: float = 2.5, max_range: float = 120.0,
                  range_noise: float = 0.0, rng: np.random.Generator | None = None
                  ) -> np.ndarray:
    """One sweep at ``time``.

    Args:
        scene: the street.
        time: seconds since the start of the drive.
        T_world_velo: (4, 4) velodyne -> road frame.
        azimuth_steps: columns per revolution (the real sensor gives about 2000).
        elevations_deg: ring elevations.
        min_range, max_range: returns outside are dropped (metres).
        range_noise: std of Gaussian range noise (metres); 0 gives exact surface points.
        rng: generator for the noise (required when ``range_noise > 0``).

    Returns:
        (N, 4) float32 ``x, y, z, reflectance`` in the velodyne frame, ring-major order.
    """
    if range_noise > 0 and rng is None:
        raise ValueError('scan_velodyne: range_noise > 0 needs an rng')
    T_world_velo = np.asarray(T_world_velo, np.float64)
    dirs_v = velodyne_directions(azimuth_steps, elevations_deg).reshape(-1, 3)
    dirs = dirs_v @ T_world_velo[:3, :3].T
    origin = T_world_velo[:3, 3]
    boxes = scene.boxes_at(time)
    cands = lidar_candidates(primitive_corners(boxes, scene.spheres),
                             np.linalg.inv(T_world_velo), elevations_deg, azimuth_steps)
    hits = cast_rays(boxes, scene.spheres, origin, dirs, cands)
    rng_t = hits.t
    keep = np.isfinite(rng_t) & (rng_t >= min_range) & (rng_t <= max_range)
    idx = np.flatnonzero(keep)
    refl = lidar_reflectance(hits.take(idx), dirs[idx])
    r = rng_t[idx]
    if range_noise > 0:
        r = r + rng.normal(0.0, range_noise, len(r))
    xyz = dirs_v[idx] * r[:, None]
    return np.concatenate([xyz, refl[:, None]], 1).astype(np.float32)

