"""Pinhole camera rendering of a street scene by exact ray casting.

Pixel ``(row v, column u)`` is the ray through the pixel centre ``(u, v)`` (integer
coordinates, the convention of KITTI's ``P_rect`` matrices): in the camera frame its direction
is ``K^-1 [u, v, 1]``, so the ray parameter of a hit *is* the camera depth ``z``. The camera
pose ``T_world_cam`` (4, 4) is used as given (its inverse maps the hit back onto the same pixel
and depth even when the 3x3 block is not exactly orthonormal, as with the 7-digit KITTI
calibration numbers).

Texture filtering uses the exact screen-space derivatives of the hit point: for a ray
``o + t d`` hitting a surface with normal ``n``, ``dP/du = t (d_u - d (n . d_u) / (n . d))``
with ``d_u = dd/du``; their absolute components give the pixel footprint per texture axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .materials import shade, sky_color, surface_albedo
from .raycast import Hits, cast_rays, occluded, primitive_corners
from .scene import StreetScene

__all__ = ['RenderedView', 'render_view', 'pinhole_candidates', 'hit_footprint', 'to_uint8']

_EDGES = [(i, i ^ b) for b in (1, 2, 4) for i in range(8) if not i & b]
_NEAR = 1e-2


@dataclass
class RenderedView:
    """One rendered image.

    Attributes:
        rgb: (H, W, 3) uint8 image.
        depth: (H, W) float32 camera depth ``z`` in metres, 0 where the ray hits the sky.
        dynamic: (H, W) bool, the pixel sees an independently moving object.
        material: (H, W) int8 ``Material`` code of the surface seen (-1 = sky).
    """
    rgb: np.ndarray
    depth: np.ndarray
    dynamic: np.ndarray
    material: np.ndarray


def _clip_to_front(cam_pts: np.ndarray) -> np.ndarray | None:
    """Vertices of (convex hull of 8 corners) intersected with ``z >= _NEAR``, or None."""
    z = cam_pts[:, 2]
    front = z >= _NEAR
    if front.all():
        return cam_pts
    if not front.any():
        return None
    pts = [cam_pts[front]]
    for i, j in _EDGES:
        if front[i] != front[j]:
            a = (_NEAR - z[i]) / (z[j] - z[i])
            pts.append(cam_pts[i] + a * (cam_pts[j] - cam_pts[i])[None])
    return np.concatenate(pts, 0)


def pinhole_candidates(corners: np.ndarray, T_cam_world: np.ndarray, K: np.ndarray,
                       height: int, width: int) -> list[np.ndarray]:
    """Per primitive, the flat pixel indices (``v * width + u``) whose rays may hit it.

    The projection of a convex body in front of the camera lies in the convex hull of its
    projected vertices; bodies crossing the near plane are clipped first (hull of the front
    corners plus the edge / near-plane intersections).

    Args:
        corners: (P, 8, 3) corners of each primitive's convex bound (road frame).
        T_cam_world: (4, 4) road -> camera.
        K: (3, 3) intrinsics.
    """
    cam = corners @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    out = []
    for j in range(len(cam)):
        pts = _clip_to_front(cam[j])
        if pts is None:
            out.append(np.zeros(0, np.int64))
            continue
        uvw = pts @ K.T
        u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
        c0, c1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 1, width - 1)
        r0, r1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 1, height - 1)
        if c0 > c1 or r0 > r1:
            out.append(np.zeros(0, np.int64))
            continue
        rows = np.arange(r0, r1 + 1, dtype=np.int64)
        cols = np.arange(c0, c1 + 1, dtype=np.int64)
        out.append((rows[:, None] * width + cols[None]).ravel())
    return out


def hit_footprint(hits: Hits, dirs: np.ndarray, d_u: np.ndarray, d_v: np.ndarray
                  ) -> np.ndarray:
    """(N, 3) pixel footprint (metres per pixel) along each hit primitive's local axes.

    Args:
        hits: nearest hits of the N rays; dirs: (N, 3) their directions;
        d_u, d_v: (3,) derivative of the ray direction per pixel step in u and v.
    """
    t = np.where(np.isfinite(hits.t), hits.t, 0.0)
    nx, ny, nz = hits.normal[:, 0], hits.normal[:, 1], hits.normal[:, 2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    nd = nx * dx + ny * dy + nz * dz
    nd = np.where(np.abs(nd) < 1e-3, np.where(nd < 0, -1e-3, 1e-3), nd)
    c, s = np.cos(hits.yaw), np.sin(hits.yaw)  # into the primitive's (yawed) frame
    out = np.zeros((len(t), 3))
    for dd in (d_u, d_v):
        k = (nx * dd[0] + ny * dd[1] + nz * dd[2]) / nd
        jx, jy, jz = (t * (dd[i] - dirs[:, i] * k) for i in range(3))
        out[:, 0] += np.abs(c * jx + s * jy)
        out[:, 1] += np.abs(c * jy - s * jx)
        out[:, 2] += np.abs(jz)
    return np.minimum(out, 50.0)


def to_uint8(radiance: np.ndarray) -> np.ndarray:
    """Display transform: clip to [0, 1], gamma 1/1.5, round to uint8."""
    return np.round(255.0 * np.clip(radiance, 0.0, 1.0) ** (1.0 / 1.5)).astype(np.uint8)


def render_view(scene: StreetScene, time: float, T_world_cam: np.ndarray, K: np.ndarray,
                height: int, width: int, shadows: bool = True) -> RenderedView:
    """Render the scene at ``time`` seen by a pinhole camera.

    Args:
        scene: the street.
        time: seconds since the start of the drive (positions of moving cars).
        T_world_cam: (4, 4) camera -> road frame (camera axes: x right, y down, z forward).
        K: (3, 3) intrinsics of the rendered image.
        height, width: image size in pixels.
        shadows: cast sun shadows (one occlusion ray per lit pixel).

    Returns:
        :class:`RenderedView` (rgb, depth, dynamic mask, material).
    """
    if height < 1 or width < 1:
        raise ValueError(f'render_view: image size must be positive, got {height}x{width}')
    T_world_cam = np.asarray(T_world_cam, np.float64)
    K = np.asarray(K, np.float64)
    boxes = scene.boxes_at(time)
    k_inv = np.linalg.inv(K)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1)
    rot = T_world_cam[:3, :3]
    origin = T_world_cam[:3, 3]
    dirs = pix @ (rot @ k_inv).T
    d_u, d_v = rot @ k_inv[:, 0], rot @ k_inv[:, 1]
    cands = pinhole_candidates(primitive_corners(boxes, scene.spheres),
                               np.linalg.inv(T_world_cam), K, height, width)
    hits = cast_rays(boxes, scene.spheres, origin, dirs, cands)
    hit = hits.prim >= 0
    albedo = surface_albedo(hits, hit_footprint(hits, dirs, d_u, d_v), scene)
    lit = (hits.normal @ scene.sun > 0).astype(np.float64)
    if shadows:
        cand = np.flatnonzero(hit & (lit > 0))
        pts = hits.pos[cand] + 2e-3 * hits.normal[cand]
        lit[cand[occluded(boxes, scene.spheres, pts, scene.sun)]] = 0.0
    radiance = shade(albedo, hits.normal, scene.sun, lit)
    sky = ~hit
    if sky.any():
        radiance[sky] = sky_color(dirs[sky], scene.seed, 1.0 / K[0, 0])
    depth = np.where(hit, hits.t, 0.0).astype(np.float32)
    return RenderedView(to_uint8(radiance).reshape(height, width, 3),
                        depth.reshape(height, width), hits.dynamic.reshape(height, width),
                        hits.material.astype(np.int8).reshape(height, width))
