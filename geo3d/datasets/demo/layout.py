"""Scene objects and the room layout of the demo generator: room shape (rectangular or L),
walls, placed footprints, occluders and the placement of furniture against walls or free."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .labels import PALETTES
from .primitives import _Prim, _v

# ------------------------------------------------------------------------------------------------
# Scene objects and layout


@dataclass
class _Obj:
    label: str | None           # tsv raw category; None = unannotated (in no segGroup)
    color: np.ndarray           # base RGB
    prims: list[_Prim]
    structural: bool = False    # floor / wall / ceiling: cut by occluders
    hole_weight: float = 1.0    # relative chance of random scan holes
    annotate_frac: float = 1.0  # fraction of segments the "annotator" put in the group


@dataclass
class _Occluder:
    """Oriented box (aligned frame) hiding vertices of ``targets`` (object indices)."""
    cx: float
    cy: float
    hx: float
    hy: float
    yaw: float
    z0: float
    z1: float
    targets: tuple[int, ...]


@dataclass
class _Wall:
    p0: np.ndarray
    p1: np.ndarray
    index: int                          # object index of the wall
    items: list[tuple[float, float, float, float]] = field(default_factory=list)  # u0,u1,z0,z1

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.p1 - self.p0))

    @property
    def e(self) -> np.ndarray:
        return (self.p1 - self.p0) / self.length

    @property
    def n(self) -> np.ndarray:  # inward normal (room polygon is counter-clockwise)
        e = self.e
        return _v(-e[1], e[0])

    def point(self, u: float, off: float = 0.0) -> np.ndarray:
        return self.p0 + self.e * u + self.n * off

    def free(self, u0: float, u1: float, z0: float, z1: float, margin: float = 0.05) -> bool:
        if u0 < 0.02 or u1 > self.length - 0.02:
            return False
        return all(u1 + margin <= a or u0 - margin >= b or z1 <= c or z0 >= d
                   for a, b, c, d in self.items)


def _rotz(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _obb_corners(cx: float, cy: float, hx: float, hy: float, yaw: float) -> np.ndarray:
    r = _rotz(yaw)[:2, :2]
    loc = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return loc @ r.T + (cx, cy)


def _sat_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two convex quads (4, 2) overlap (separating axis test)?"""
    for poly in (a, b):
        for k in range(4):
            e = poly[(k + 1) % 4] - poly[k]
            ax = _v(-e[1], e[0])
            pa, pb = a @ ax, b @ ax
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


class _Layout:
    """Room geometry, placed footprints and the growing object list of one scene."""

    def __init__(self, rng: np.random.Generator, kind: str) -> None:
        self.rng = rng
        self.kind = kind
        lo, hi = (3.0, 4.2) if kind == 'bathroom' else (3.4, 7.0)
        self.W = float(rng.uniform(lo, hi))
        self.D = float(rng.uniform(lo, hi))
        self.H = float(rng.uniform(2.5, 3.0))
        self.notch: np.ndarray | None = None  # (4, 2) corners of the cut-out corner (L shape)
        poly = [(0, 0), (self.W, 0), (self.W, self.D), (0, self.D)]
        if kind != 'bathroom' and rng.random() < 0.35 and min(self.W, self.D) > 4.0:
            a, b = rng.uniform(0.3, 0.45) * self.W, rng.uniform(0.3, 0.45) * self.D
            poly = [(0, 0), (self.W, 0), (self.W, self.D - b), (self.W - a, self.D - b),
                    (self.W - a, self.D), (0, self.D)]
            self.notch = np.array([(self.W - a, self.D - b), (self.W, self.D - b),
                                   (self.W, self.D), (self.W - a, self.D)])
        self.poly = np.array(poly, dtype=np.float64)
        for axis, size in ((0, self.W), (1, self.D)):  # random mirror keeps it counter-clockwise
            if rng.random() < 0.5:
                self.poly[:, axis] = size - self.poly[:, axis]
                self.poly = self.poly[::-1].copy()
                if self.notch is not None:
                    self.notch[:, axis] = size - self.notch[:, axis]
        self.objs: list[_Obj] = []
        self.occluders: list[_Occluder] = []
        self.footprints: list[np.ndarray] = []
        self.walls: list[_Wall] = []
        self.floor_ids: list[int] = []

    # -- bookkeeping
    def color(self, palette: str, jitter: float = 14.0) -> np.ndarray:
        pal = PALETTES[palette]
        base = np.asarray(pal[int(self.rng.integers(len(pal)))], np.float64)
        return np.clip(base + self.rng.normal(0, jitter, 3), 0, 255)

    def add(self, obj: _Obj) -> int:
        self.objs.append(obj)
        return len(self.objs) - 1

    @property
    def structural(self) -> tuple[int, ...]:
        return tuple(i for i, o in enumerate(self.objs) if o.structural)

    def fits(self, corners: np.ndarray, margin: float = 0.04, ignore: int | None = None) -> bool:
        """Footprint inside the room and clear of other footprints (but ``ignore``)."""
        if (corners.min(0) < margin).any() or corners[:, 0].max() > self.W - margin \
                or corners[:, 1].max() > self.D - margin:
            return False
        if self.notch is not None:
            grown = self.notch + np.sign(self.notch - self.notch.mean(0)) * margin
            if _sat_overlap(corners, grown):
                return False
        return not any(_sat_overlap(corners, f) for k, f in enumerate(self.footprints)
                       if k != ignore)

    # -- placement
    def place_wall(self, w: float, d: float, h: float, gap: float = 0.02, tries: int = 40,
                   wall: _Wall | None = None, u: float | None = None
                   ) -> tuple[float, float, float, _Wall, float] | None:
        """Pose (x, y, yaw) with the object's back (+y local) against a wall."""
        for _ in range(tries):
            if wall is None:
                lens = np.array([wl.length for wl in self.walls])
                wl = self.walls[int(self.rng.choice(len(lens), p=lens / lens.sum()))]
            else:
                wl = wall
            if wl.length < w + 0.1:
                if wall is not None:
                    return None
                continue
            uu = float(self.rng.uniform(0.05 + w / 2, wl.length - 0.05 - w / 2)) if u is None \
                else u
            if not wl.free(uu - w / 2, uu + w / 2, 0.0, h):
                if u is not None:
                    return None
                continue
            c = wl.point(uu, gap + d / 2)
            n = wl.n
            yaw = math.atan2(n[0], -n[1])
            corners = _obb_corners(c[0], c[1], w / 2, d / 2, yaw)
            if self.fits(corners, margin=0.0):
                return float(c[0]), float(c[1]), yaw, wl, uu
            if u is not None:
                return None
        return None

    def place_free(self, w: float, d: float, tries: int = 40, snap: bool = False
                   ) -> tuple[float, float, float] | None:
        for _ in range(tries):
            x = float(self.rng.uniform(0.3, self.W - 0.3))
            y = float(self.rng.uniform(0.3, self.D - 0.3))
            yaw = float(self.rng.integers(4)) * math.pi / 2 + (
                self.rng.normal(0, 0.08) if snap else float(self.rng.uniform(-0.6, 0.6)))
            if self.fits(_obb_corners(x, y, w / 2, d / 2, yaw), margin=0.15):
                return x, y, yaw
        return None

    def commit(self, objs: list[_Obj], x: float, y: float, yaw: float, w: float, d: float,
               h: float, solid: bool, wall: _Wall | None = None, u: float = 0.0,
               z: float = 0.0, footprint: bool = True) -> list[int]:
        """Move local-frame objects to pose; register footprint, wall interval, occluder."""
        rot, t = _rotz(yaw), _v(x, y, z)
        ids = []
        for o in objs:
            o.prims = [p.moved(rot, t) for p in o.prims]
            ids.append(self.add(o))
        if footprint:
            self.footprints.append(_obb_corners(x, y, w / 2, d / 2, yaw))
        if wall is not None:
            wall.items.append((u - w / 2, u + w / 2, z, z + h))
        if solid:
            # hides the floor below and the wall behind (footprint grown towards the back)
            back = 0.15 if wall is not None else 0.0
            off = rot[:2, :2] @ _v(0, back / 2)
            self.occluders.append(_Occluder(x + off[0], y + off[1], w / 2 - 0.01,
                                            d / 2 + back / 2 - 0.01, yaw,
                                            z + 0.01 if z > 0 else -0.2, z + h - 0.02,
                                            self.structural))
        return ids
