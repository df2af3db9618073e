"""Mesh primitives of the demo generator: subdivided grids (parallelograms), cylinders and
disks, box / basin helpers, and their tessellation with jittered interior vertices."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# ------------------------------------------------------------------------------------------------
# Mesh primitives


@dataclass
class _Prim:
    """A surface patch. kind 'grid': p = (origin, u, v), a parallelogram whose normal is u x v;
    'cyl': p = (base centre, (r, h, inward)), vertical side; 'disk': p = (centre, (r, up, 0))."""
    kind: str
    p: tuple[np.ndarray, ...]
    color: np.ndarray | None = None
    wave: tuple[float, float, float] | None = None  # (amplitude, period, phase) along normal

    def area(self) -> float:
        if self.kind == 'grid':
            return float(np.linalg.norm(np.cross(self.p[1], self.p[2])))
        r, h = float(self.p[1][0]), float(self.p[1][1])
        return 2 * math.pi * r * h if self.kind == 'cyl' else math.pi * r * r

    def moved(self, rot: np.ndarray, t: np.ndarray) -> '_Prim':
        if self.kind == 'grid':
            p = (rot @ self.p[0] + t, rot @ self.p[1], rot @ self.p[2])
        else:
            p = (rot @ self.p[0] + t, self.p[1])
        return _Prim(self.kind, p, self.color, self.wave)


def _v(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


def _grid(o: Sequence[float], u: Sequence[float], v: Sequence[float], color: Any = None,
          wave: tuple[float, float, float] | None = None) -> _Prim:
    return _Prim('grid', (_v(*o), _v(*u), _v(*v)), None if color is None else _v(*color), wave)


def _box(x0: float, y0: float, z0: float, x1: float, y1: float, z1: float, color: Any = None,
         bottom: bool = False, top: bool = True, back: bool = True) -> list[_Prim]:
    """Axis-aligned box surfaces with outward normals."""
    w, d, h = x1 - x0, y1 - y0, z1 - z0
    out = [_grid((x0, y0, z0), (w, 0, 0), (0, 0, h), color),        # front  (-y)
           _grid((x0, y1, z0), (0, -d, 0), (0, 0, h), color),       # left   (-x)
           _grid((x1, y0, z0), (0, d, 0), (0, 0, h), color)]        # right  (+x)
    if back:
        out.append(_grid((x1, y1, z0), (-w, 0, 0), (0, 0, h), color))  # back (+y)
    if top:
        out.append(_grid((x0, y0, z1), (w, 0, 0), (0, d, 0), color))
    if bottom:
        out.append(_grid((x0, y0, z0), (0, d, 0), (w, 0, 0), color))
    return out


def _cyl(cx: float, cy: float, z0: float, r: float, h: float, color: Any = None,
         top: bool = True, inward: bool = False) -> list[_Prim]:
    c = None if color is None else _v(*color)
    out = [_Prim('cyl', (_v(cx, cy, z0), _v(r, h, float(inward))), c)]
    if top:
        out.append(_Prim('disk', (_v(cx, cy, z0 + h), _v(r, 1.0, 0.0)), c))
    return out


def _basin(x0: float, y0: float, x1: float, y1: float, ztop: float, depth: float,
           color: Any = None) -> list[_Prim]:
    """Inward-facing open box (a recess) hanging below ``ztop``."""
    w, d, z0 = x1 - x0, y1 - y0, ztop - depth
    return [_grid((x0, y0, z0), (0, 0, depth), (w, 0, 0), color),       # front wall, faces +y
            _grid((x1, y1, z0), (0, 0, depth), (-w, 0, 0), color),      # back wall, faces -y
            _grid((x0, y1, z0), (0, 0, depth), (0, -d, 0), color),      # left wall, faces +x
            _grid((x1, y0, z0), (0, 0, depth), (0, d, 0), color),       # right wall, faces -x
            _grid((x0, y0, z0), (w, 0, 0), (0, d, 0), color)]           # bottom, faces +z


@functools.lru_cache(maxsize=None)
def _quad_faces(nu: int, nv: int, wrap: bool = False) -> np.ndarray:
    """(m, 3) int64 triangles of an nu x nv vertex lattice (index i * nv + j); ``wrap`` closes
    the i direction (cylinders). Winding: (i, j) -> (i + 1, j) -> (i + 1, j + 1)."""
    ni = nu if wrap else nu - 1
    i, j = np.meshgrid(np.arange(ni), np.arange(nv - 1), indexing='ij')
    i, j = i.ravel(), j.ravel()
    i1 = (i + 1) % nu
    p00, p10, p11, p01 = i * nv + j, i1 * nv + j, i1 * nv + j + 1, i * nv + j + 1
    faces = np.concatenate([np.stack([p00, p10, p11], 1), np.stack([p00, p11, p01], 1)])
    faces.setflags(write=False)
    return faces


@functools.lru_cache(maxsize=None)
def _lattice(nu: int, nv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lattice parameters a, b in [0, 1] (flattened, i-major) and jitter masks (interior)."""
    a = np.repeat(np.arange(nu) / (nu - 1), nv)
    b = np.tile(np.arange(nv) / (nv - 1), nu)
    ma = ((a > 0) & (a < 1)) / (nu - 1)
    mb = ((b > 0) & (b < 1)) / (nv - 1)
    for x in (a, b, ma, mb):
        x.setflags(write=False)
    return a, b, ma, mb


@functools.lru_cache(maxsize=None)
def _disk_faces(nt: int, nr: int) -> np.ndarray:
    k = np.arange(nt)
    parts = [np.stack([np.zeros(nt, np.int64), 1 + k, 1 + (k + 1) % nt], 1)]
    for q in range(nr - 1):
        a0, a1 = 1 + q * nt, 1 + (q + 1) * nt
        parts.append(np.stack([a0 + k, a1 + k, a1 + (k + 1) % nt], 1))
        parts.append(np.stack([a0 + k, a1 + (k + 1) % nt, a0 + (k + 1) % nt], 1))
    faces = np.concatenate(parts)
    faces.setflags(write=False)
    return faces


def _tessellate(prim: _Prim, h: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subdivide a primitive at spacing ~h (interior vertices jittered by up to 0.3 spacing).

    Returns:
        vertices (n, 3) float64, faces (m, 3) int64 (local indices), normals (n, 3) or (3,).
    """
    if prim.kind == 'grid':
        o, u, v = prim.p
        ux, uy, uz = u
        vx, vy, vz = v
        lu, lv = math.sqrt(ux * ux + uy * uy + uz * uz), math.sqrt(vx * vx + vy * vy + vz * vz)
        nu, nv = max(2, int(math.ceil(lu / h)) + 1), max(2, int(math.ceil(lv / h)) + 1)
        a, b, ma, mb = _lattice(nu, nv)
        jit = rng.uniform(-0.3, 0.3, (2, nu * nv))
        a = a + jit[0] * ma
        b = b + jit[1] * mb
        n = _v(uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)
        n /= max(math.sqrt(float(n @ n)), 1e-12)
        pts = o + a[:, None] * u + b[:, None] * v
        if prim.wave is not None:
            amp, period, phase = prim.wave
            pts += (amp * np.sin(2 * math.pi * a * lu / period + phase))[:, None] * n
        return pts, _quad_faces(nu, nv), n
    c, (r, hh, flag) = prim.p
    if prim.kind == 'cyl':
        nt = max(8, int(math.ceil(2 * math.pi * r / h)))
        nz = max(2, int(math.ceil(hh / h)) + 1)
        a, b, _, mb = _lattice(nt + 1, nz)     # a: one extra column, dropped (wraps)
        a, b, mb = a[:nt * nz], b[:nt * nz], mb[:nt * nz]
        z = (b + rng.uniform(-0.3, 0.3, nt * nz) * mb) * hh
        th = a * (2 * math.pi)                  # a = i / nt
        radial = np.stack([np.cos(th), np.sin(th), np.zeros_like(th)], -1)
        pts = c + r * radial
        pts[:, 2] += z
        faces = _quad_faces(nt, nz, wrap=True)
        if flag:  # inward-facing side
            return pts, faces[:, ::-1], -radial
        return pts, faces, radial
    # disk: centre vertex + rings
    nt = max(8, int(math.ceil(2 * math.pi * r / h)))
    nr = max(1, int(math.ceil(r / h)))
    rad = np.repeat(np.arange(1, nr + 1) / nr * r, nt)
    th = np.tile(np.arange(nt) * (2 * math.pi / nt), nr)
    pts = np.empty((nt * nr + 1, 3))
    pts[0] = c
    pts[1:, 0] = c[0] + rad * np.cos(th)
    pts[1:, 1] = c[1] + rad * np.sin(th)
    pts[1:, 2] = c[2]
    if hh > 0:
        return pts, _disk_faces(nt, nr), _v(0, 0, 1)
    return pts, _disk_faces(nt, nr)[:, ::-1], _v(0, 0, -1)
