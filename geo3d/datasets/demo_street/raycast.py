"""Exact, vectorised ray casting against a street scene (ground plane, yaw-rotated boxes,
spheres): nearest hit per ray and any-hit occlusion (shadow) queries.

A ray is ``o + t * d``; ``t`` is in units of ``|d|`` (the camera passes un-normalised
directions with unit z so that ``t`` is the camera depth, the lidar unit directions so that
``t`` is the range). Broad phase: the caller gives, per primitive, the indices of the rays that
can hit it (from its sensor's exact projection of the primitive's corners), so each primitive
is intersected with only those rays (slab test for boxes, quadratic for spheres). Arithmetic
is done per coordinate on contiguous 1D arrays (numpy reductions over a trailing axis of 3
are an order of magnitude slower).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from .scene import BoxSet, Material, SphereSet

__all__ = ['Hits', 'cast_rays', 'occluded', 'box_corners', 'primitive_corners', 'ray_box',
           'ray_sphere', 'T_EPS']

T_EPS = 1e-4  # hits closer than this along the ray are ignored (self-intersection)


@dataclass
class Hits:
    """Nearest hit of N rays.

    Attributes:
        t: (N,) ray parameter of the hit (``inf`` for a miss).
        prim: (N,) -1 miss (sky), 0 ground, 1..B box ``prim - 1``, B+1.. sphere ``prim - B - 1``.
        material: (N,) ``Material`` code (``SKY`` for a miss).
        pos: (N, 3) hit point (road frame); 0 for a miss.
        normal: (N, 3) unit outward normal (road frame); 0 for a miss.
        local: (N, 3) hit point in the primitive's frame (box: centred, unrotated; sphere:
            relative to the centre; ground: road frame).
        axis: (N,) face axis in the primitive's frame (0, 1, 2; 2 for the ground, -1 else).
        yaw: (N,) primitive yaw (0 for ground and spheres).
        half: (N, 3) box half extents (0 otherwise).
        color, seed, param: the primitive's base albedo (N, 3), texture seed (N,), parameters
            (N, 4).
        dynamic: (N,) bool, the hit belongs to a moving object.
    """
    t: np.ndarray
    prim: np.ndarray
    material: np.ndarray
    pos: np.ndarray
    normal: np.ndarray
    local: np.ndarray
    axis: np.ndarray
    yaw: np.ndarray
    half: np.ndarray
    color: np.ndarray
    seed: np.ndarray
    param: np.ndarray
    dynamic: np.ndarray

    def take(self, idx: np.ndarray) -> 'Hits':
        """The hits of the rays ``idx`` (index array or boolean mask)."""
        return Hits(*(getattr(self, f.name)[idx] for f in fields(self)))


_SIGNS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], np.float64)


def box_corners(boxes: BoxSet) -> np.ndarray:
    """(B, 8, 3) corners of every box in the road frame."""
    loc = _SIGNS[None] * boxes.half[:, None]
    c, s = np.cos(boxes.yaw)[:, None], np.sin(boxes.yaw)[:, None]
    out = np.empty_like(loc)
    out[..., 0] = c * loc[..., 0] - s * loc[..., 1]
    out[..., 1] = s * loc[..., 0] + c * loc[..., 1]
    out[..., 2] = loc[..., 2]
    return out + boxes.center[:, None]


def primitive_corners(boxes: BoxSet, spheres: SphereSet) -> np.ndarray:
    """(B + S, 8, 3): box corners, then the corners of each sphere's axis-aligned bounding box
    (both are convex hulls containing the primitive)."""
    sph = spheres.center[:, None] + _SIGNS[None] * spheres.radius[:, None, None]
    return np.concatenate([box_corners(boxes), sph], 0)


def _slab(qx, qy, qz, dx, dy, dz, hx, hy, hz, c, s) -> np.ndarray:
    """Entry t of rays (origin minus box centre ``q``, direction ``d``, per coordinate) into
    a box of half extents ``h`` rotated by yaw (cos ``c``, sin ``s``); inf on a miss."""
    tnear = np.full(np.broadcast(dx, qx, hx, c).shape, -np.inf)
    tfar = np.full_like(tnear, np.inf)
    for ol, dl, h in ((c * qx + s * qy, c * dx + s * dy, hx),
                      (c * qy - s * qx, c * dy - s * dx, hy), (qz, dz, hz)):
        dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
        inv = 1.0 / dl
        t1 = (-h - ol) * inv
        t2 = (h - ol) * inv
        np.maximum(tnear, np.minimum(t1, t2), out=tnear)
        np.minimum(tfar, np.maximum(t1, t2), out=tfar)
    return np.where((tnear <= tfar) & (tnear > T_EPS), tnear, np.inf)


def _sphere(qx, qy, qz, dx, dy, dz, r) -> np.ndarray:
    """Nearest t > T_EPS of rays (origin minus centre ``q``) on a sphere, inf if none."""
    a = dx * dx + dy * dy + dz * dz
    b = dx * qx + dy * qy + dz * qz
    c = qx * qx + qy * qy + qz * qz - r * r
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > T_EPS) & (c > 0), t, np.inf)


def _xyz(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    return a[..., 0], a[..., 1], a[..., 2]


def ray_box(o: np.ndarray, d: np.ndarray, center: np.ndarray, half: np.ndarray,
            yaw: float | np.ndarray) -> np.ndarray:
    """Slab test (Kay & Kajiya). ``o`` (3,) or (n, 3), ``d`` (n, 3), box ``center``/``half``
    (3,) or (n, 3), ``yaw`` scalar or (n,) -> (n,) entry ``t``; ``inf`` where the ray misses
    the box or starts inside it."""
    q = np.asarray(o, np.float64) - np.asarray(center, np.float64)
    return _slab(*_xyz(q), *_xyz(d), *_xyz(half), np.cos(yaw), np.sin(yaw))


def ray_sphere(o: np.ndarray, d: np.ndarray, center: np.ndarray,
               radius: float | np.ndarray) -> np.ndarray:
    """Nearest ``t > T_EPS`` of ``o + t d`` on the sphere, ``inf`` if none (outside origins).
    ``o``/``center`` (3,) or (n, 3), ``d`` (n, 3), ``radius`` scalar or (n,)."""
    q = np.asarray(o, np.float64) - np.asarray(center, np.float64)
    return _sphere(*_xyz(q), *_xyz(d), radius)


def _prim_t(boxes: BoxSet, spheres: SphereSet, j: int, qx, qy, qz, dx, dy, dz) -> np.ndarray:
    """t of rays with primitive ``j`` (boxes first); ``q`` is the ray origin (not centred)."""
    nb = len(boxes)
    if j < nb:
        cx, cy, cz = boxes.center[j]
        hx, hy, hz = boxes.half[j]
        yaw = float(boxes.yaw[j])
        return _slab(qx - cx, qy - cy, qz - cz, dx, dy, dz, hx, hy, hz, np.cos(yaw),
                     np.sin(yaw))
    k = j - nb
    cx, cy, cz = spheres.center[k]
    return _sphere(qx - cx, qy - cy, qz - cz, dx, dy, dz, float(spheres.radius[k]))


def cast_rays(boxes: BoxSet, spheres: SphereSet, origin: np.ndarray, dirs: np.ndarray,
              candidates: Sequence[np.ndarray | None] | None = None, ground: bool = True
              ) -> Hits:
    """Nearest hit of the rays ``origin + t * dirs``.

    Args:
        boxes, spheres: the scene's primitives at one instant.
        origin: (3,) shared ray origin (road frame).
        dirs: (N, 3) ray directions (any length; ``t`` is in units of it).
        candidates: per primitive (boxes then spheres) the indices of the rays that may hit it,
            ``None`` for all rays; ``None`` overall tests every ray against every primitive.
        ground: include the ground plane ``z = 0``.

    Returns:
        :class:`Hits` with per-ray attributes of the nearest surface.
    """
    origin = np.asarray(origin, np.float64)
    dirs = np.asarray(dirs, np.float64)
    n, nb, ns = len(dirs), len(boxes), len(spheres)
    if candidates is None:
        candidates = [None] * (nb + ns)
    if len(candidates) != nb + ns:
        raise ValueError(f'cast_rays: {len(candidates)} candidate lists for {nb + ns} primitives')
    dx, dy, dz = (np.ascontiguousarray(dirs[:, k]) for k in range(3))
    ox, oy, oz = (float(v) for v in origin)
    best = np.full(n, np.inf)
    if ground:
        with np.errstate(divide='ignore', invalid='ignore'):
            tg = -oz / dz
        best = np.where((dz < 0) & (tg > T_EPS), tg, np.inf)
    prim = np.where(np.isfinite(best), 0, -1)
    for j, idx in enumerate(candidates):
        if idx is None:
            t = _prim_t(boxes, spheres, j, ox, oy, oz, dx, dy, dz)
            better = t < best
            best[better] = t[better]
            prim[better] = j + 1
        elif len(idx):
            t = _prim_t(boxes, spheres, j, ox, oy, oz, dx[idx], dy[idx], dz[idx])
            better = t < best[idx]
            sel = idx[better]
            best[sel] = t[better]
            prim[sel] = j + 1
    return _describe(boxes, spheres, origin, dirs, best, prim)


def _describe(boxes: BoxSet, spheres: SphereSet, origin: np.ndarray, dirs: np.ndarray,
              t: np.ndarray, prim: np.ndarray) -> Hits:
    n, nb = len(dirs), len(boxes)
    pos = origin + np.where(prim >= 0, t, 0.0)[:, None] * dirs
    normal = np.zeros((n, 3))
    local = np.zeros((n, 3))
    axis = np.full(n, -1, np.int64)
    yaw = np.zeros(n)
    half = np.zeros((n, 3))
    material = np.full(n, Material.SKY, np.int64)
    color = np.zeros((n, 3))
    seed = np.zeros(n, np.int64)
    param = np.zeros((n, 4))
    dynamic = np.zeros(n, bool)

    g = np.flatnonzero(prim == 0)
    normal[g, 2] = 1.0
    local[g] = pos[g]
    axis[g] = 2
    material[g] = Material.GROUND

    b = np.flatnonzero((prim >= 1) & (prim <= nb))
    if len(b):
        j = prim[b] - 1
        c, s = np.cos(boxes.yaw)[j], np.sin(boxes.yaw)[j]
        q = pos[b] - boxes.center[j]
        lx = c * q[:, 0] + s * q[:, 1]
        ly = c * q[:, 1] - s * q[:, 0]
        lz = q[:, 2]
        hb = boxes.half[j]
        r0, r1, r2 = np.abs(lx) / hb[:, 0], np.abs(ly) / hb[:, 1], np.abs(lz) / hb[:, 2]
        ax = np.where((r0 >= r1) & (r0 >= r2), 0, np.where(r1 >= r2, 1, 2))
        sg = np.sign(np.where(ax == 0, lx, np.where(ax == 1, ly, lz)))
        normal[b, 0] = np.where(ax == 0, sg * c, np.where(ax == 1, -sg * s, 0.0))
        normal[b, 1] = np.where(ax == 0, sg * s, np.where(ax == 1, sg * c, 0.0))
        normal[b, 2] = np.where(ax == 2, sg, 0.0)
        local[b, 0], local[b, 1], local[b, 2] = lx, ly, lz
        axis[b], yaw[b], half[b] = ax, boxes.yaw[j], hb
        material[b], color[b], seed[b] = boxes.material[j], boxes.color[j], boxes.seed[j]
        param[b], dynamic[b] = boxes.param[j], boxes.dynamic[j]

    sp = np.flatnonzero(prim > nb)
    if len(sp):
        k = prim[sp] - nb - 1
        loc = pos[sp] - spheres.center[k]
        normal[sp] = loc / spheres.radius[k][:, None]
        local[sp] = loc
        material[sp], color[sp], seed[sp] = spheres.material[k], spheres.color[k], spheres.seed[k]
    return Hits(t, prim, material, pos, normal, local, axis, yaw, half, color, seed, param,
                dynamic)


def occluded(boxes: BoxSet, spheres: SphereSet, points: np.ndarray, direction: np.ndarray
             ) -> np.ndarray:
    """Whether the ray ``points + t * direction`` (t > 0) hits any box or sphere (not the
    ground): (N, 3) points, (3,) direction -> (N,) bool. Used for sun shadows.

    Broad phase: points and primitive corners are projected on the plane orthogonal to
    ``direction``; a primitive is tested only against the points inside its projected bounding
    rectangle (found with a sort on one axis) that lie below its top along ``direction``.
    """
    n = len(points)
    out = np.zeros(n, bool)
    if n == 0 or len(boxes) + len(spheres) == 0:
        return out
    dvec = np.asarray(direction, np.float64)
    dvec = dvec / np.linalg.norm(dvec)
    helper = np.array([0.0, 0.0, 1.0]) if abs(dvec[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(dvec, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(dvec, e1)
    px, py, pz = (np.ascontiguousarray(points[:, k]) for k in range(3))
    p1 = px * e1[0] + py * e1[1] + pz * e1[2]
    p2 = px * e2[0] + py * e2[1] + pz * e2[2]
    pa = px * dvec[0] + py * dvec[1] + pz * dvec[2]
    order = np.argsort(p1, kind='stable')
    s1 = p1[order]
    corners = primitive_corners(boxes, spheres)
    c1, c2, ca = corners @ e1, corners @ e2, corners @ dvec
    lo1, hi1 = c1.min(1) - 1e-6, c1.max(1) + 1e-6
    lo2, hi2, top = c2.min(1) - 1e-6, c2.max(1) + 1e-6, ca.max(1) + 1e-6
    i0, i1 = np.searchsorted(s1, lo1), np.searchsorted(s1, hi1)
    dx, dy, dz = (float(v) for v in dvec)
    for j in np.flatnonzero(i1 > i0):
        idx = order[i0[j]:i1[j]]
        q2, qa = p2[idx], pa[idx]
        idx = idx[(q2 >= lo2[j]) & (q2 <= hi2[j]) & (qa <= top[j]) & ~out[idx]]
        if len(idx) == 0:
            continue
        t = _prim_t(boxes, spheres, int(j), px[idx], py[idx], pz[idx], dx, dy, dz)
        out[idx[np.isfinite(t)]] = True
    return out
