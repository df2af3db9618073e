"""Procedural indoor scenes written in the raw ScanNet v2 layout (demo / test data).

:func:`make_demo_scannet` writes ``OUT/scans/<id>/`` (train + val), ``OUT/scans_test/<id>/``
(test), ``OUT/scannetv2-labels.combined.tsv`` and ``OUT/scannetv2_{train,val,test}.txt`` exactly
as the official download lays them out (see ``shared/reference/dataset-formats.md`` §1), so the
real converter runs on them unchanged.

Each scene is a furnished room (rectangular or L-shaped, 3-7 m, walls 2.5-3 m) built from
subdivided triangle-mesh primitives in an axis-aligned room frame (floor z = 0). The mesh gets
positional noise, occlusion gaps (floor under furniture, walls behind it, random patches),
per-class colours with per-object and per-vertex variation, a voxel over-segmentation with
arbitrary segment ids, and an aggregation whose labels are real tsv raw categories. Raw
coordinates are ``inverse(axisAlignment) @ aligned``. Same seed -> byte-identical files.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from plyfile import PlyData, PlyElement

from geo3d.datasets.scannet_constants import CLASS_LABELS_200, VALID_CLASS_IDS_200

__all__ = ['make_demo_scannet', 'make_demo_scene', 'write_scannet_scene', 'write_ply_mesh',
           'write_label_tsv', 'TSV_COLUMNS', 'TSV_ROWS', 'NYU40_PALETTE', 'DemoScene']

# ------------------------------------------------------------------------------------------------
# Label metadata (rows copied from the real scannetv2-labels.combined.tsv)

TSV_COLUMNS: tuple[str, ...] = (
    'id', 'raw_category', 'category', 'count', 'nyu40id', 'eigen13id', 'nyuClass', 'nyu40class',
    'eigen13class', 'ModelNet40', 'ModelNet10', 'ShapeNetCore55', 'synsetoffset', 'wnsynsetid',
    'wnsynsetkey', 'mpcat40', 'mpcat40index')

_TSV_TEXT = """\
1	wall	wall	8277	1	12	wall	wall	Wall					n04546855	wall.n.01	wall	1
2	chair	chair	4646	5	4	chair	chair	Chair	chair	chair	chair	3001627	n03001627	chair.n.01	chair	3
22	book	book	318	23	2	book	books	Books					n02870526	book.n.11	objects	39
3	floor	floor	1553	2	5	floor	floor	Floor					n03365592	floor.n.01	floor	2
5	door	door	1483	8	12	door	door	Wall	door				n03221720	door.n.01	door	4
1163	object	object	1313	40	7		otherprop	Objects							objects	39
16	window	window	1209	9	13	window	window	Window					n04587648	window.n.01	window	9
4	table	table	1170	7	10	table	table	Table	table	table	table	4379243	n04379243	table.n.02	table	5
56	trash can	trash can	1090	39	6	garbage bin	otherfurniture	Furniture			trash_bin	2747177	n02747177	ashcan.n.01	objects	39
13	pillow	pillow	937	18	7	pillow	pillow	Objects			pillow	3938244	n03938244	pillow.n.01	cushion	8
15	picture	picture	862	11	8	picture	picture	Picture					n03931044	picture.n.01	picture	6
41	ceiling	ceiling	806	22	3	ceiling	ceiling	Ceiling					n02990373	ceiling.n.01	ceiling	17
26	box	box	775	29	7	box	box	Objects					n02883344	box.n.01	objects	39
7	cabinet	cabinet	731	3	6	cabinet	cabinet	Furniture			cabinet	2933112	n02933112	cabinet.n.01	cabinet	7
9	desk	desk	680	14	10	desk	desk	Table	desk	desk	table	4379243	n03179701	desk.n.01	table	5
10	office chair	office chair	595	5	4	chair	chair	Chair	chair	chair	chair	3001627	n04373704	swivel_chair.n.01	chair	3
6	couch	couch	502	6	9	sofa	sofa	Sofa	sofa	sofa	sofa	4256520	n04256520	sofa.n.01	sofa	10
14	sink	sink	488	34	7	sink	sink	Objects	sink				n04223580	sink.n.01	sink	15
28	lamp	lamp	419	35	7	lamp	lamp	Objects	lamp		lamp	3636649	n03636649	lamp.n.02	lighting	28
11	bed	bed	370	4	1	bed	bed	Bed	bed	bed	bed	2818832	n02818832	bed.n.01	bed	11
18	bookshelf	bookshelf	360	10	6	bookshelf	bookshelf	Furniture	bookshelf		bookshelf	2871439	n02871439	bookshelf.n.01	shelving	31
21	curtain	curtain	347	16	13	curtain	curtain	Window	curtain				n03151077	curtain.n.01	curtain	12
96	radiator	radiator	322	39	6	radiator	otherfurniture	Furniture					n04041069	radiator.n.02	misc	40
29	kitchen cabinet	kitchen cabinet	310	3	6	cabinet	cabinet	Furniture					n02933112	cabinet.n.01	cabinet	7
23	armchair	armchair	281	5	4	chair	chair	Chair	chair	chair	chair	3001627	n02738535	armchair.n.01	chair	3
24	coffee table	coffee table	258	7	10	coffee table	table	Table	table	table	table	4379243	n03063968	coffee_table.n.01	table	5
17	toilet	toilet	256	33	7	toilet	toilet	Objects	toilet	toilet			n04446276	toilet.n.01	toilet	18
34	nightstand	nightstand	224	32	6	night stand	night stand	Furniture	night_stand	night_stand			n03015254	chest_of_drawers.n.01	chest_of_drawers	13
33	tv	tv	219	25	11	television	television	TV			tv or monitor	3211117	n03211117	display.n.06	tv_monitor	22
27	refrigerator	refrigerator	154	24	6	refridgerator	refridgerator	Furniture					n04070727	refrigerator.n.01	appliances	37
44	end table	end table	147	7	10	table	table	Table	table	table	table	4379243	n04379243	table.n.02	table	5
55	shower curtain	shower curtain	144	28	7	shower curtain	shower curtain	Objects	curtain				n04209239	shower_curtain.n.01	curtain	12
42	bathtub	bathtub	144	36	7	bathtub	bathtub	Objects	bathtub	bathtub	tub	2808440	n02808440	bathtub.n.01	bathtub	25
159	kitchen counter	kitchen counter	140	12	6	counter	counter	Furniture	table	table	table	4379243	n03116530	counter.n.01	counter	26
67	ottoman	ottoman	111	39	6	ottoman	otherfurniture	Furniture	stool				n03380724	footstool.n.01	stool	19
35	counter	counter	104	12	6	counter	counter	Furniture	table	table	table	4379243	n03116530	counter.n.01	counter	26
1164	bathroom vanity	bathroom vanity	126	3	6	cabinet	cabinet	Furniture			cabinet	2933112	n02933112	cabinet.n.01	table	5
"""
TSV_ROWS: dict[str, tuple[str, ...]] = {}
for _line in _TSV_TEXT.splitlines():
    _cells = tuple(_line.split('\t'))
    assert len(_cells) == len(TSV_COLUMNS), _line
    TSV_ROWS[_cells[1]] = _cells
# raw category -> (tsv id, nyu40 id)
RAW_IDS: dict[str, tuple[int, int]] = {k: (int(v[0]), int(v[4])) for k, v in TSV_ROWS.items()}
for _name, (_id, _) in RAW_IDS.items():  # the tsv id of a ScanNet200 class is its benchmark id
    if _name in CLASS_LABELS_200:
        assert VALID_CLASS_IDS_200[CLASS_LABELS_200.index(_name)] == _id, _name

# ScanNet BenchmarkScripts util.create_color_palette(): nyu40 id -> RGB (0 = unannotated)
NYU40_PALETTE: np.ndarray = np.array([
    (0, 0, 0), (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
    (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
    (196, 156, 148), (23, 190, 207), (178, 76, 76), (247, 182, 210), (66, 188, 102),
    (219, 219, 141), (140, 57, 197), (202, 185, 52), (51, 176, 203), (200, 54, 131),
    (92, 193, 61), (78, 71, 183), (172, 114, 82), (255, 127, 14), (91, 163, 138), (153, 98, 156),
    (140, 153, 101), (158, 218, 229), (100, 125, 154), (178, 127, 135), (120, 185, 128),
    (146, 111, 194), (44, 160, 44), (112, 128, 144), (96, 207, 209), (227, 119, 194),
    (213, 92, 176), (94, 106, 211), (82, 84, 163), (100, 85, 144)], dtype=np.uint8)

# Base colours per material / class (RGB). Several classes share materials (wood, white, grey),
# so colour alone does not identify a class.
_WOOD = [(150, 108, 70), (122, 86, 58), (176, 136, 94), (96, 70, 52)]
_WHITE = [(226, 224, 218), (212, 210, 204), (236, 234, 230)]
_DARK = [(62, 58, 56), (48, 48, 52), (84, 80, 76)]
_GREY = [(150, 150, 152), (122, 124, 128), (176, 174, 170)]
_FABRIC = [(120, 122, 128), (112, 74, 56), (72, 92, 132), (188, 172, 148), (132, 52, 48),
           (82, 112, 84)]
PALETTES: dict[str, list[tuple[int, int, int]]] = {
    'wall': [(214, 208, 196), (196, 192, 184), (186, 196, 206), (222, 214, 190), (200, 206, 192)],
    'floor': _WOOD[:3] + [(128, 128, 132), (168, 160, 150), (94, 84, 78)],
    'ceiling': [(232, 232, 228)],
    'door': _WOOD + [(222, 218, 210), (160, 160, 166)],
    'window': [(150, 170, 186), (122, 142, 152), (206, 218, 228), (100, 112, 120)],
    'curtain': [(176, 62, 58), (70, 90, 140), (200, 190, 160), (90, 120, 90), (220, 216, 206)],
    'cabinet': _WOOD + _WHITE[:2] + _DARK[:1],
    'bed': [(228, 228, 234), (150, 168, 200), (200, 180, 150), (176, 120, 120)],
    'chair': _DARK + _WOOD[:2] + [(150, 50, 48), (60, 80, 130)],
    'sofa': _FABRIC,
    'table': _WOOD + _WHITE[:1] + _DARK[:1],
    'desk': _WOOD[:3] + _WHITE[:2] + [(90, 90, 94)],
    'bookshelf': _WOOD + _WHITE[:1],
    'counter': [(90, 90, 96), (230, 228, 222), (160, 150, 140), (60, 60, 62)],
    'refrigerator': [(236, 236, 236), (184, 184, 190), (60, 60, 64)],
    'toilet': [(240, 240, 240), (230, 232, 236)],
    'sink': [(238, 238, 240), (178, 180, 186)],
    'bathtub': [(238, 238, 236), (228, 230, 234)],
    'shower curtain': [(220, 226, 236), (236, 236, 236), (170, 196, 210), (214, 190, 200)],
    'trash can': [(80, 80, 86), (60, 100, 160), (172, 172, 172), (60, 110, 70)],
    'radiator': [(232, 232, 230), (200, 200, 200)],
    'ottoman': _FABRIC,
    'nightstand': _WOOD + _WHITE[:1],
    'lamp': [(232, 220, 190), (240, 240, 236), (60, 60, 60)],
    'tv': [(24, 24, 28), (40, 40, 44)],
    'box': [(170, 132, 92), (190, 160, 120), (220, 220, 214)],
    'pillow': [(236, 236, 236), (200, 190, 170), (150, 168, 200)],
    'book': [(170, 40, 40), (40, 70, 140), (40, 110, 60), (220, 200, 60), (30, 30, 30),
             (220, 220, 214)],
    'object': [(120, 120, 120), (200, 80, 40), (40, 140, 160), (230, 230, 230)],
    'metal': [(170, 170, 176), (60, 60, 64)],
}

SCENE_TYPES: dict[str, str] = {
    'bedroom': 'Bedroom / Hotel', 'living': 'Living room / Lounge', 'kitchen': 'Kitchen',
    'bathroom': 'Bathroom', 'office': 'Office'}

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


# ------------------------------------------------------------------------------------------------
# Furniture builders: local frame, footprint centred at the origin, floor z = 0, back at +y.
# Each returns (objects, w, d, h, solid).

_Built = tuple[list[_Obj], float, float, float, bool]


def _b_bed(L: _Layout) -> _Built:
    r = L.rng
    w = float(r.choice([0.95, 1.4, 1.6, 1.8])) + r.uniform(-0.04, 0.04)
    d, hm, hb = r.uniform(1.95, 2.15), r.uniform(0.45, 0.62), r.uniform(0.85, 1.2)
    wood = L.color('cabinet')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.07, hm)
    prims += _box(-w / 2 - 0.02, d / 2 - 0.07, 0, w / 2 + 0.02, d / 2, hb, color=wood)
    if r.random() < 0.4:
        prims += _box(-w / 2 - 0.02, -d / 2 - 0.05, 0, w / 2 + 0.02, -d / 2, hm + 0.12, color=wood)
    objs = [_Obj('bed', L.color('bed'), prims)]
    n_p = 1 if w < 1.2 else 2
    for k in range(n_p):
        cx = 0.0 if n_p == 1 else (-0.25 if k == 0 else 0.25) * w * 1.2
        pw = min(0.6, w / n_p - 0.08)
        objs.append(_Obj('pillow', L.color('pillow'),
                         _box(cx - pw / 2, d / 2 - 0.5, hm, cx + pw / 2, d / 2 - 0.12, hm + 0.13)))
    return objs, w, d, max(hm, hb), True


def _b_chair(L: _Layout, label: str = 'chair') -> _Built:
    r = L.rng
    if label == 'armchair':
        w, d = r.uniform(0.75, 0.95), r.uniform(0.75, 0.9)
        hs, hb = r.uniform(0.4, 0.45), r.uniform(0.8, 0.95)
        prims = _box(-w / 2 + 0.14, -d / 2, 0, w / 2 - 0.14, d / 2 - 0.18, hs)
        prims += _box(-w / 2, d / 2 - 0.18, 0, w / 2, d / 2, hb)
        prims += _box(-w / 2, -d / 2, 0, -w / 2 + 0.14, d / 2 - 0.18, hs + 0.2)
        prims += _box(w / 2 - 0.14, -d / 2, 0, w / 2, d / 2 - 0.18, hs + 0.2)
        return [_Obj(label, L.color('sofa'), prims)], w, d, hb, True
    w, d = r.uniform(0.42, 0.52), r.uniform(0.42, 0.52)
    hs, hb = r.uniform(0.42, 0.48), r.uniform(0.38, 0.5)
    leg = L.color('metal') if r.random() < 0.5 else None
    prims = _box(-w / 2, -d / 2, hs - 0.05, w / 2, d / 2, hs, bottom=True)
    prims += _box(-w / 2, d / 2 - 0.05, hs, w / 2, d / 2, hs + hb)
    if label == 'office chair':
        prims += _cyl(0, 0, 0.08, 0.03, hs - 0.13, color=leg, top=False)
        prims += _cyl(0, 0, 0.0, 0.3, 0.08, color=_v(50, 50, 52))
    else:
        t = 0.035
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (w / 2 - t), sy * (d / 2 - t)
                prims += _box(x - t / 2, y - t / 2, 0, x + t / 2, y + t / 2, hs - 0.05,
                              color=leg, top=False)
    return [_Obj(label, L.color('chair'), prims)], w, d, hs + hb, False


def _b_table(L: _Layout, label: str = 'table') -> _Built:
    r = L.rng
    if label == 'coffee table':
        w, d, h = r.uniform(0.8, 1.2), r.uniform(0.5, 0.7), r.uniform(0.38, 0.48)
    elif label == 'end table':
        w = d = r.uniform(0.45, 0.6)
        h = r.uniform(0.5, 0.6)
    else:
        w, d, h = r.uniform(1.0, 1.8), r.uniform(0.7, 1.0), r.uniform(0.72, 0.77)
    th = r.uniform(0.03, 0.05)
    prims = _box(-w / 2, -d / 2, h - th, w / 2, d / 2, h, bottom=True)
    leg = L.color('metal') if r.random() < 0.4 else None
    t = 0.05
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (w / 2 - t), sy * (d / 2 - t)
            prims += _box(x - t / 2, y - t / 2, 0, x + t / 2, y + t / 2, h - th, color=leg,
                          top=False)
    return [_Obj(label, L.color('table'), prims)], w, d, h, False


def _b_desk(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(1.1, 1.7), r.uniform(0.6, 0.8), r.uniform(0.72, 0.76)
    th = 0.03
    prims = _box(-w / 2, -d / 2, h - th, w / 2, d / 2, h, bottom=True)
    prims += _box(-w / 2, -d / 2, 0, -w / 2 + 0.03, d / 2, h - th, top=False)
    if r.random() < 0.6:  # drawer block
        prims += _box(w / 2 - 0.42, -d / 2, 0, w / 2, d / 2, h - th, top=False)
    else:
        prims += _box(w / 2 - 0.03, -d / 2, 0, w / 2, d / 2, h - th, top=False)
    prims += _box(-w / 2 + 0.03, d / 2 - 0.03, h - 0.45, w / 2 - 0.03, d / 2, h - th, top=False)
    objs = [_Obj('desk', L.color('desk'), prims)]
    if r.random() < 0.6:  # a monitor-ish unannotated object or a lamp on top
        objs.append(_Obj(None, L.color('object'),
                         _box(-0.25, d / 2 - 0.25, h, 0.25, d / 2 - 0.2, h + 0.35, bottom=True)))
    return objs, w, d, h, False


def _b_sofa(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(1.6, 2.4), r.uniform(0.8, 0.95)
    hs, hb, ha, ta = r.uniform(0.38, 0.45), r.uniform(0.75, 0.9), r.uniform(0.55, 0.65), 0.16
    prims = _box(-w / 2 + ta, -d / 2, 0, w / 2 - ta, d / 2 - 0.2, hs)
    prims += _box(-w / 2, d / 2 - 0.2, 0, w / 2, d / 2, hb)
    prims += _box(-w / 2, -d / 2, 0, -w / 2 + ta, d / 2 - 0.2, ha)
    prims += _box(w / 2 - ta, -d / 2, 0, w / 2, d / 2 - 0.2, ha)
    objs = [_Obj('couch', L.color('sofa'), prims)]
    if r.random() < 0.5:
        objs.append(_Obj('pillow', L.color('pillow'),
                         _box(-w / 2 + ta + 0.05, d / 2 - 0.35, hs, -w / 2 + ta + 0.45,
                              d / 2 - 0.2, hs + 0.38)))
    return objs, w, d, hb, True


def _b_cabinet(L: _Layout, label: str = 'cabinet', h: float | None = None,
               d: float | None = None, w: float | None = None) -> _Built:
    r = L.rng
    w = r.uniform(0.5, 1.2) if w is None else w
    d = r.uniform(0.4, 0.6) if d is None else d
    h = float(r.choice([r.uniform(0.7, 1.0), r.uniform(1.6, 2.1)])) if h is None else h
    col = L.color('cabinet')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h)
    # door gap + handles: thin slightly darker strips on the front
    prims += _box(-0.01, -d / 2 - 0.005, 0.05, 0.01, -d / 2, h - 0.05, color=col * 0.6, back=False)
    return [_Obj(label, col, prims)], w, d, h, True


def _b_bookshelf(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(0.7, 1.3), r.uniform(0.28, 0.38), r.uniform(1.6, 2.1)
    t = 0.02
    prims = _box(-w / 2, -d / 2, 0, -w / 2 + t, d / 2, h, back=False)
    prims += _box(w / 2 - t, -d / 2, 0, w / 2, d / 2, h, back=False)
    prims += [_grid((-w / 2, d / 2 - t, 0), (w, 0, 0), (0, 0, h))]  # back panel (inner face)
    prims += [_grid((-w / 2, d / 2, 0), (w, 0, 0), (0, 0, h))]      # back panel (outer face)
    n_sh = int(round(h / 0.38))
    levels = np.linspace(0, h - t, n_sh + 1)
    objs: list[_Obj] = []
    for z in levels:
        prims += _box(-w / 2 + t, -d / 2, z, w / 2 - t, d / 2 - t, z + t, bottom=z > 0, back=False)
    for z in levels[:-1]:  # books on some shelves
        if r.random() < 0.55:
            x = -w / 2 + t + 0.02
            books = []
            while x < w / 2 - 0.1 and r.random() < 0.93:
                bw, bh = r.uniform(0.02, 0.05), r.uniform(0.18, min(0.3, h / n_sh - 0.06))
                bd = r.uniform(0.15, d - 0.06)
                books += _box(x, d / 2 - t - bd, z + t, x + bw, d / 2 - t, z + t + bh,
                              color=L.color('book'), back=False)
                x += bw + 0.002
            if books:
                objs.append(_Obj('book', L.color('book'), books))
    return [_Obj('bookshelf', L.color('bookshelf'), prims)] + objs, w, d, h, True


def _b_fridge(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(0.6, 0.9), r.uniform(0.65, 0.75), r.uniform(1.6, 1.95)
    col = L.color('refrigerator')
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h)
    hz = h * r.uniform(0.6, 0.7)
    prims += _box(-w / 2, -d / 2 - 0.01, hz - 0.01, w / 2, -d / 2, hz + 0.01, color=col * 0.5,
                  back=False)
    prims += _box(w / 2 - 0.08, -d / 2 - 0.05, hz + 0.1, w / 2 - 0.05, -d / 2, hz + 0.45,
                  color=L.color('metal'), back=False)
    return [_Obj('refrigerator', col, prims)], w, d, h, True


def _b_toilet(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(0.36, 0.42), r.uniform(0.62, 0.72)
    col = L.color('toilet', 6)
    prims = _box(-w / 2 + 0.02, d / 2 - 0.2, 0.38, w / 2 - 0.02, d / 2, 0.8)   # tank
    prims += _cyl(0, d / 2 - 0.2 - w / 2, 0.0, w / 2, 0.4)                     # bowl + seat
    prims += _box(-0.1, d / 2 - 0.22, 0, 0.1, d / 2 - 0.1, 0.38, top=False)     # foot
    return [_Obj('toilet', col, prims)], w, d, 0.8, False


def _b_sink(L: _Layout) -> _Built:
    r = L.rng
    w, d = r.uniform(0.45, 0.6), r.uniform(0.38, 0.48)
    col = L.color('sink', 6)
    prims = _box(-w / 2, -d / 2, 0.72, w / 2, d / 2, 0.88, bottom=True, top=False)
    prims += _basin(-w / 2 + 0.04, -d / 2 + 0.04, w / 2 - 0.04, d / 2 - 0.04, 0.88, 0.13)
    prims += [_grid((-w / 2, -d / 2, 0.88), (w, 0, 0), (0, 0.04, 0)),
              _grid((-w / 2, d / 2 - 0.04, 0.88), (w, 0, 0), (0, 0.04, 0)),
              _grid((-w / 2, -d / 2 + 0.04, 0.88), (0.04, 0, 0), (0, d - 0.08, 0)),
              _grid((w / 2 - 0.04, -d / 2 + 0.04, 0.88), (0.04, 0, 0), (0, d - 0.08, 0))]
    prims += _cyl(0, 0.02, 0.0, 0.08, 0.72, top=False)
    return [_Obj('sink', col, prims)], w, d, 0.88, False


def _basin(x0: float, y0: float, x1: float, y1: float, ztop: float, depth: float,
           color: Any = None) -> list[_Prim]:
    """Inward-facing open box (a recess) hanging below ``ztop``."""
    w, d, z0 = x1 - x0, y1 - y0, ztop - depth
    return [_grid((x0, y0, z0), (0, 0, depth), (w, 0, 0), color),       # front wall, faces +y
            _grid((x1, y1, z0), (0, 0, depth), (-w, 0, 0), color),      # back wall, faces -y
            _grid((x0, y1, z0), (0, 0, depth), (0, -d, 0), color),      # left wall, faces +x
            _grid((x1, y0, z0), (0, 0, depth), (0, d, 0), color),       # right wall, faces -x
            _grid((x0, y0, z0), (w, 0, 0), (0, d, 0), color)]           # bottom, faces +z


def _b_bathtub(L: _Layout) -> _Built:
    r = L.rng
    w, d, h = r.uniform(1.5, 1.75), r.uniform(0.7, 0.8), r.uniform(0.5, 0.6)
    rim = 0.08
    prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, top=False)
    prims += [_grid((-w / 2, -d / 2, h), (w, 0, 0), (0, rim, 0)),
              _grid((-w / 2, d / 2 - rim, h), (w, 0, 0), (0, rim, 0)),
              _grid((-w / 2, -d / 2 + rim, h), (rim, 0, 0), (0, d - 2 * rim, 0)),
              _grid((w / 2 - rim, -d / 2 + rim, h), (rim, 0, 0), (0, d - 2 * rim, 0))]
    prims += _basin(-w / 2 + rim, -d / 2 + rim, w / 2 - rim, d / 2 - rim, h, h - 0.08)
    objs = [_Obj('bathtub', L.color('bathtub', 6), prims)]
    if r.random() < 0.9:  # shower curtain along the open (front) side
        frac = r.uniform(0.35, 1.0)
        cw = w * frac
        x0 = -w / 2 if r.random() < 0.5 else w / 2 - cw
        objs.append(_Obj('shower curtain', L.color('shower curtain'),
                         [_grid((x0, -d / 2 + 0.03, h + 0.15), (cw, 0, 0), (0, 0, 1.9 - h - 0.15),
                                wave=(r.uniform(0.02, 0.04), r.uniform(0.12, 0.2),
                                      r.uniform(0, 6.28)))]))
    return objs, w, d, h, True


def _b_counter(L: _Layout, w: float) -> _Built:
    r = L.rng
    d, h = r.uniform(0.58, 0.66), r.uniform(0.88, 0.94)
    top_th = 0.04
    objs = [_Obj('kitchen counter' if r.random() < 0.6 else 'counter', L.color('counter'),
                 _box(-w / 2, -d / 2 - 0.03, h - top_th, w / 2, d / 2, h, bottom=True))]
    cab = L.color('cabinet')
    objs.append(_Obj('kitchen cabinet', cab, _box(-w / 2 + 0.02, -d / 2 + 0.03, 0.0, w / 2 - 0.02,
                                                  d / 2, h - top_th, top=False)))
    return objs, w, d, h, True


def _b_trash(L: _Layout) -> _Built:
    r = L.rng
    if r.random() < 0.6:
        rad, h = r.uniform(0.12, 0.2), r.uniform(0.3, 0.6)
        prims = _cyl(0, 0, 0, rad, h, top=False) + _cyl(0, 0, 0.05, rad - 0.015, h - 0.05,
                                                        top=False, inward=True)
        w = d = 2 * rad
    else:
        w, d, h = r.uniform(0.25, 0.4), r.uniform(0.2, 0.35), r.uniform(0.35, 0.65)
        prims = _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, top=False)
        prims += _basin(-w / 2 + 0.01, -d / 2 + 0.01, w / 2 - 0.01, d / 2 - 0.01, h, h - 0.05)
    return [_Obj('trash can', L.color('trash can'), prims)], w, d, h, False


def _b_simple(label: str, palette: str, size: tuple[tuple[float, float], ...],
              solid: bool = True) -> Callable[[_Layout], _Built]:
    def build(L: _Layout) -> _Built:
        w, d, h = (float(L.rng.uniform(a, b)) for a, b in size)
        return [_Obj(label, L.color(palette), _box(-w / 2, -d / 2, 0, w / 2, d / 2, h))], w, d, h, \
            solid
    return build


_b_nightstand = _b_simple('nightstand', 'nightstand', ((0.4, 0.55), (0.35, 0.45), (0.45, 0.62)))
_b_ottoman = _b_simple('ottoman', 'ottoman', ((0.45, 0.7), (0.45, 0.7), (0.35, 0.45)))
_b_box = _b_simple('box', 'box', ((0.25, 0.6), (0.25, 0.5), (0.2, 0.5)))
_b_clutter = _b_simple(None, 'object', ((0.15, 0.45), (0.15, 0.45), (0.1, 0.6)))  # type: ignore


def _b_radiator(L: _Layout) -> _Built:
    r = L.rng
    w, h = r.uniform(0.6, 1.2), r.uniform(0.45, 0.6)
    prims: list[_Prim] = []
    n_fin = int(w / 0.07)
    for k in range(n_fin):  # vertical fins give it a distinctive comb shape
        x = -w / 2 + (k + 0.5) * w / n_fin
        prims += _box(x - 0.015, -0.05, 0.12, x + 0.015, 0.05, 0.12 + h, back=False)
    return [_Obj('radiator', L.color('radiator', 6), prims)], w, 0.1, 0.12 + h, False


def _lamp(L: _Layout, x: float, y: float, z: float) -> _Obj:
    r = L.rng
    rs, hs = r.uniform(0.1, 0.18), r.uniform(0.15, 0.25)
    stem = r.uniform(0.2, 0.35)
    prims = _cyl(x, y, z, 0.07, 0.03) + _cyl(x, y, z + 0.03, 0.012, stem, top=False)
    prims += _cyl(x, y, z + 0.03 + stem, rs, hs)
    return _Obj('lamp', L.color('lamp'), prims)


# ------------------------------------------------------------------------------------------------
# Room shell: floor, walls, doors, windows, pictures, curtains


def _build_shell(L: _Layout) -> None:
    r = L.rng
    wall_col = L.color('wall', 8)
    floor_col = L.color('floor', 10)
    W, D = L.W, L.D
    if L.notch is None:
        rects = [(0.0, 0.0, W, D)]
    else:
        nx0, ny0 = L.notch.min(0)
        nx1, ny1 = L.notch.max(0)
        rects = [(0.0, 0.0, W, D)]
        # split the bounding rectangle into two rectangles avoiding the notch
        if ny0 <= 1e-9:     # notch at the bottom
            rects = [(0.0, ny1, W, D), (0.0 if nx0 > 1e-9 else nx1, 0.0,
                                         nx0 if nx0 > 1e-9 else W, ny1)]
        else:               # notch at the top
            rects = [(0.0, 0.0, W, ny0), (0.0 if nx0 > 1e-9 else nx1, ny0,
                                          nx0 if nx0 > 1e-9 else W, D)]
    floor = _Obj('floor', floor_col, [_grid((x0, y0, 0), (x1 - x0, 0, 0), (0, y1 - y0, 0))
                                      for x0, y0, x1, y1 in rects], structural=True)
    L.floor_ids.append(L.add(floor))
    if r.random() < 0.3:  # partial ceiling scan (an ignored class)
        x0, y0, x1, y1 = rects[0]
        cw = (x1 - x0) * r.uniform(0.3, 0.7)
        L.add(_Obj('ceiling', L.color('ceiling', 6),
                   [_grid((x0, y0, L.H), (0, y1 - y0, 0), (cw, 0, 0))], structural=True))
    n = len(L.poly)
    for k in range(n):
        p0, p1 = L.poly[k], L.poly[(k + 1) % n]
        o3 = np.r_[p1, 0.0]
        prim = _grid(o3, np.r_[p0 - p1, 0.0], (0, 0, L.H))
        idx = L.add(_Obj('wall', wall_col + r.normal(0, 3, 3), [prim], structural=True))
        L.walls.append(_Wall(p0.copy(), p1.copy(), idx))

    # one door (sometimes two), windows, pictures
    order = r.permutation(len(L.walls))
    n_doors = 1 + int(r.random() < 0.25)
    for wi in order[:n_doors]:
        _add_door(L, L.walls[int(wi)])
    n_win = 0 if L.kind == 'bathroom' and r.random() < 0.4 else int(r.integers(1, 4))
    for _ in range(n_win):
        _add_window(L, L.walls[int(r.integers(len(L.walls)))])


def _wall_cut(L: _Layout, wall: _Wall, u0: float, u1: float, z0: float, z1: float) -> None:
    c = (wall.point(u0) + wall.point(u1)) / 2
    yaw = math.atan2(wall.e[1], wall.e[0])
    L.occluders.append(_Occluder(float(c[0]), float(c[1]), (u1 - u0) / 2, 0.2, yaw, z0, z1,
                                 (wall.index,)))


def _wall_prims(wall: _Wall, pts: list[tuple[float, float, float]],
                color: Any = None) -> _Prim:
    """Grid from wall-frame (u, off, z) triples: origin, u-end, v-end."""
    def p(u: float, off: float, z: float) -> np.ndarray:
        return np.r_[wall.point(u, off), z]
    o, a, b = (p(*q) for q in pts)
    return _Prim('grid', (o, a - o, b - o), None if color is None else _v(*color))


def _add_door(L: _Layout, wall: _Wall) -> None:
    r = L.rng
    dw, dh = r.uniform(0.8, 0.95), r.uniform(2.0, 2.1)
    for _ in range(20):
        u0 = float(r.uniform(0.1, wall.length - dw - 0.1)) if wall.length > dw + 0.2 else -1
        if u0 < 0:
            return
        if wall.free(u0 - 0.05, u0 + dw + 0.05, 0, dh):
            break
    else:
        return
    u1 = u0 + dw
    wall.items.append((u0 - 0.05, u1 + 0.05, 0.0, dh + 0.1))
    _wall_cut(L, wall, u0, u1, 0.01, dh)
    col = L.color('door')
    prims = []
    fc = col * 0.85
    # frame: jambs and head protruding 2 cm, reveal surfaces into the wall
    for uu in (u0 - 0.06, u1):
        prims.append(_wall_prims(wall, [(uu + 0.06, 0.02, 0), (uu, 0.02, 0),
                                        (uu + 0.06, 0.02, dh + 0.06)], fc))
    prims.append(_wall_prims(wall, [(u1, 0.02, dh), (u0, 0.02, dh), (u1, 0.02, dh + 0.06)], fc))
    prims.append(_wall_prims(wall, [(u0, 0.0, 0), (u0, 0.0, dh), (u0, -0.12, 0)], fc))
    prims.append(_wall_prims(wall, [(u1, -0.12, 0), (u1, -0.12, dh), (u1, 0.0, 0)], fc))
    prims.append(_wall_prims(wall, [(u0, 0.0, dh), (u1, 0.0, dh), (u0, -0.12, dh)], fc))
    if r.random() < 0.5:   # closed: panel recessed in the opening
        prims.append(_wall_prims(wall, [(u1, -0.05, 0), (u0, -0.05, 0), (u1, -0.05, dh)]))
        prims.append(_wall_prims(wall, [(u1 - 0.1, -0.03, 0.95), (u1 - 0.22, -0.03, 0.95),
                                        (u1 - 0.1, -0.03, 1.0)], L.color('metal')))
        L.footprints.append(_obb_corners(*wall.point((u0 + u1) / 2, 0.45), dw / 2, 0.45,
                                         math.atan2(wall.e[1], wall.e[0])))
    else:                  # open into the room, hinged at u0
        ang = float(r.uniform(0.5, 1.5))
        e, n = wall.e, wall.n
        dirv = math.cos(ang) * e + math.sin(ang) * n
        hinge = np.r_[wall.point(u0, 0.0), 0.0]
        du = np.r_[dirv * dw, 0.0]
        thick = np.r_[(-math.sin(ang) * e + math.cos(ang) * n) * 0.04, 0.0]
        up = _v(0, 0, dh)
        prims.append(_Prim('grid', (hinge, du, up)))
        prims.append(_Prim('grid', (hinge + thick + du, -du, up)))
        prims.append(_Prim('grid', (hinge + du, thick, up)))
        swing = wall.point(u0 + dw / 2, dw / 2)
        L.footprints.append(_obb_corners(swing[0], swing[1], dw / 2 + 0.05, dw / 2 + 0.05,
                                         math.atan2(e[1], e[0])))
    L.add(_Obj('door', col, prims))


def _add_window(L: _Layout, wall: _Wall) -> None:
    r = L.rng
    ww, wh = r.uniform(0.7, min(2.0, wall.length - 0.6)), r.uniform(0.9, 1.5)
    sill = r.uniform(0.7, 1.0)
    if ww < 0.5 or sill + wh > L.H - 0.15:
        return
    for _ in range(20):
        u0 = float(r.uniform(0.2, wall.length - ww - 0.2))
        if wall.free(u0 - 0.35, u0 + ww + 0.35, sill - 0.3, sill + wh + 0.2):
            break
    else:
        return
    u1, z0, z1 = u0 + ww, sill, sill + wh
    wall.items.append((u0 - 0.05, u1 + 0.05, z0 - 0.05, z1 + 0.05))
    _wall_cut(L, wall, u0, u1, z0, z1)
    depth = r.uniform(0.08, 0.2)
    glass, frame = L.color('window'), L.color('wall', 6) * r.uniform(0.9, 1.05)
    glass_prims = [_wall_prims(wall, [(u1, -depth, z0), (u0, -depth, z0), (u1, -depth, z1)])]
    mull = int(r.integers(0, 3))
    for k in range(1, mull + 1):   # mullions
        uu = u0 + ww * k / (mull + 1)
        glass_prims.append(_wall_prims(wall, [(uu + 0.03, -depth + 0.02, z0),
                                              (uu - 0.03, -depth + 0.02, z0),
                                              (uu + 0.03, -depth + 0.02, z1)], frame))
    reveal = [_wall_prims(wall, [(u0, 0.0, z0), (u0, 0.0, z1), (u0, -depth, z0)], frame),
              _wall_prims(wall, [(u1, -depth, z0), (u1, -depth, z1), (u1, 0.0, z0)], frame),
              _wall_prims(wall, [(u0, 0.0, z1), (u1, 0.0, z1), (u0, -depth, z1)], frame),
              _wall_prims(wall, [(u0 - 0.05, -depth, z0), (u1 + 0.05, -depth, z0),
                                 (u0 - 0.05, 0.06, z0)], frame),
              _wall_prims(wall, [(u1 + 0.05, 0.06, z0 - 0.04), (u0 - 0.05, 0.06, z0 - 0.04),
                                 (u1 + 0.05, 0.06, z0)], frame)]
    win_idx = L.add(_Obj('window', glass, glass_prims + reveal, hole_weight=4.0))
    if r.random() < 0.55 and L.kind != 'bathroom':  # curtains at both sides
        col = L.color('curtain')
        top = min(L.H - 0.05, z1 + r.uniform(0.1, 0.3))
        bot = float(r.choice([0.02, max(0.02, z0 - r.uniform(0.05, 0.2))]))
        cw = r.uniform(0.3, 0.55)
        for side in (0, 1):
            a = u0 - 0.15 if side == 0 else u1 + 0.15 - cw
            prim = _wall_prims(wall, [(a + cw, 0.1, bot), (a, 0.1, bot), (a + cw, 0.1, top)])
            prim.wave = (r.uniform(0.02, 0.045), r.uniform(0.12, 0.22), r.uniform(0, 6.28))
            L.add(_Obj('curtain', col, [prim]))
            c = wall.point(a + cw / 2, 0.0)
            L.occluders.append(_Occluder(float(c[0]), float(c[1]), cw / 2, 0.3,
                                         math.atan2(wall.e[1], wall.e[0]), bot, top,
                                         (wall.index, win_idx)))
        wall.items.append((u0 - 0.2, u1 + 0.2, bot, top))


def _add_pictures(L: _Layout, n: int) -> None:
    r = L.rng
    for _ in range(n):
        wall = L.walls[int(r.integers(len(L.walls)))]
        pw, ph = r.uniform(0.3, 1.2), r.uniform(0.3, 0.9)
        zc = r.uniform(1.35, min(1.8, L.H - ph / 2 - 0.2))
        if wall.length < pw + 0.4:
            continue
        u0 = float(r.uniform(0.2, wall.length - pw - 0.2))
        if not wall.free(u0, u0 + pw, zc - ph / 2, zc + ph / 2):
            continue
        wall.items.append((u0, u0 + pw, zc - ph / 2, zc + ph / 2))
        t = r.uniform(0.015, 0.04)
        z0, z1, u1 = zc - ph / 2, zc + ph / 2, u0 + pw
        # random saturated colour: overlaps with other classes' palettes
        col = np.clip(r.uniform(30, 230, 3) * r.uniform(0.6, 1.0), 0, 255)
        prims = [_wall_prims(wall, [(u1, t, z0), (u0, t, z0), (u1, t, z1)]),
                 _wall_prims(wall, [(u0, 0, z0), (u0, 0, z1), (u0, t, z0)]),
                 _wall_prims(wall, [(u1, t, z0), (u1, t, z1), (u1, 0, z0)]),
                 _wall_prims(wall, [(u0, t, z0), (u1, t, z0), (u0, 0, z0)]),
                 _wall_prims(wall, [(u0, 0, z1), (u1, 0, z1), (u0, t, z1)])]
        L.add(_Obj('picture', col, prims))
        _wall_cut(L, wall, u0, u1, z0, z1)


# ------------------------------------------------------------------------------------------------
# Room recipes


def _try_wall(L: _Layout, built: _Built, **kw: Any) -> tuple[float, float, float] | None:
    objs, w, d, h, solid = built
    pose = L.place_wall(w, d, h, **kw)
    if pose is None:
        return None
    x, y, yaw, wall, u = pose
    L.commit(objs, x, y, yaw, w, d, h, solid, wall=wall, u=u)
    return x, y, yaw


def _try_free(L: _Layout, built: _Built, snap: bool = False) -> tuple[float, float, float] | None:
    objs, w, d, h, solid = built
    pose = L.place_free(w, d, snap=snap)
    if pose is None:
        return None
    L.commit(objs, *pose, w, d, h, solid)
    return pose


def _chairs_around(L: _Layout, tx: float, ty: float, tyaw: float, tw: float, td: float,
                   n: int, label: str = 'chair', front_only: bool = False) -> None:
    """Up to n chairs facing the table/desk just placed (its footprint is the last one)."""
    table_fp = len(L.footprints) - 1
    sides = [(0, -1), (0, 1), (-1, 0), (1, 0)]
    if front_only:
        sides = sides[:1]
    else:
        L.rng.shuffle(sides)
    for sx, sy in sides[:n]:
        objs, w, d, h, solid = _b_chair(L, label)
        tuck = float(L.rng.uniform(-0.05, 0.15))
        off = _v(sx * (tw / 2 + d / 2 - tuck), sy * (td / 2 + d / 2 - tuck))
        # chair faces the table: its back (+y local) points away from the table
        yaw = tyaw + math.atan2(-sx, sy) + L.rng.normal(0, 0.15)
        p = _rotz(tyaw)[:2, :2] @ off + (tx, ty)
        corners = _obb_corners(p[0], p[1], w / 2, d / 2, yaw)
        if L.fits(corners, margin=0.03, ignore=table_fp):
            L.commit(objs, float(p[0]), float(p[1]), yaw, w, d, h, solid)


def _recipe_bedroom(L: _Layout) -> None:
    r = L.rng
    bed = _b_bed(L)
    pose = _try_wall(L, bed)
    if pose is not None:
        w = bed[1]
        for side in (-1, 1):
            if r.random() < 0.75:
                ns = _b_nightstand(L)
                nw, nd, nh = ns[1], ns[2], ns[3]
                x, y, yaw = pose
                off = _rotz(yaw)[:2, :2] @ _v(side * (w / 2 + nw / 2 + 0.05), bed[2] / 2 - nd / 2)
                cx, cy = x + off[0], y + off[1]
                if L.fits(_obb_corners(cx, cy, nw / 2, nd / 2, yaw)):
                    L.commit(ns[0], cx, cy, yaw, nw, nd, nh, True)
                    if r.random() < 0.6:
                        L.add(_lamp(L, cx, cy, nh))
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_cabinet(L, 'cabinet'))
    if r.random() < 0.5:
        desk = _b_desk(L)
        dp = _try_wall(L, desk)
        if dp is not None:
            _chairs_around(L, *dp, desk[1], desk[2], 1, 'chair', front_only=True)
    if r.random() < 0.5:
        _try_free(L, _b_ottoman(L))
    _try_wall(L, _b_trash(L))
    _add_pictures(L, int(r.integers(1, 4)))


def _recipe_living(L: _Layout) -> None:
    r = L.rng
    sofa = _b_sofa(L)
    sp = _try_wall(L, sofa)
    if sp is not None:
        ct = _b_table(L, 'coffee table')
        x, y, yaw = sp
        off = _rotz(yaw)[:2, :2] @ _v(0, -(sofa[2] / 2 + 0.35 + ct[2] / 2))
        cx, cy = x + off[0], y + off[1]
        if L.fits(_obb_corners(cx, cy, ct[1] / 2, ct[2] / 2, yaw)):
            L.commit(ct[0], cx, cy, yaw, ct[1], ct[2], ct[3], False)
    for _ in range(int(r.integers(1, 3))):
        _try_free(L, _b_chair(L, 'armchair' if r.random() < 0.6 else 'chair'))
    if r.random() < 0.8:
        _try_wall(L, _b_bookshelf(L))
    cab = _b_cabinet(L, 'cabinet', h=float(r.uniform(0.45, 0.8)))
    cp = _try_wall(L, cab)
    if cp is not None and r.random() < 0.7:
        tw = min(cab[1] - 0.05, 1.1)
        tv = _Obj('tv', L.color('tv', 4), _box(-tw / 2, -0.03, cab[3], tw / 2, 0.03,
                                               cab[3] + tw * 0.58))
        L.commit([tv], *cp, tw, 0.06, 0.6, False, footprint=False)
    if r.random() < 0.5:
        _try_free(L, _b_table(L, 'end table'))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)
    _try_wall(L, _b_trash(L))
    _add_pictures(L, int(r.integers(1, 4)))


def _recipe_kitchen(L: _Layout) -> None:
    r = L.rng
    pose, want = None, float(r.uniform(1.6, 3.2))
    for wall in sorted(L.walls, key=lambda wl: -wl.length):
        for frac in (1.0, 0.75, 0.5):
            run = min(wall.length - 0.3, want) * frac
            if run < 0.9:
                continue
            counter = _b_counter(L, run)
            pose = L.place_wall(counter[1], counter[2], counter[3], wall=wall, tries=10)
            if pose is not None:
                break
        if pose is not None:
            break
    if pose is not None:
        x, y, yaw, wl, u = pose
        ids = L.commit(counter[0], x, y, yaw, counter[1], counter[2], counter[3], True,
                       wall=wl, u=u)
        # sink recessed into the counter
        sw, sd, zt = r.uniform(0.45, 0.7), r.uniform(0.35, 0.42), counter[3]
        sx = float(r.uniform(-run / 2 + sw / 2 + 0.1, run / 2 - sw / 2 - 0.1))
        sprims = _basin(sx - sw / 2, -sd / 2, sx + sw / 2, sd / 2, zt + 0.003, 0.2)
        sprims += _cyl(sx, sd / 2 + 0.05, zt, 0.02, 0.3, color=L.color('metal'))
        sink = _Obj('sink', L.color('sink', 6), sprims)
        L.commit([sink], x, y, yaw, sw, sd, 0.2, False, footprint=False)
        c = _rotz(yaw)[:2, :2] @ _v(sx, 0) + (x, y)
        L.occluders.append(_Occluder(float(c[0]), float(c[1]), sw / 2, sd / 2, yaw, zt - 0.5,
                                     zt + 0.1, tuple(ids)))
        if r.random() < 0.8:   # upper cabinets
            uw = min(run, float(r.uniform(1.0, 2.4)))
            up = _b_cabinet(L, 'kitchen cabinet', h=0.7, d=0.35, w=uw)
            uu = u + float(r.uniform(-(run - uw) / 2, (run - uw) / 2))
            c2 = wl.point(uu, 0.02 + 0.175)
            zc = float(r.uniform(1.45, 1.6))
            if wl.free(uu - uw / 2, uu + uw / 2, zc, zc + 0.7):
                L.commit(up[0], float(c2[0]), float(c2[1]), yaw, uw, 0.35, 0.7, True, wall=wl, u=uu,
                         z=zc, footprint=False)
    _try_wall(L, _b_fridge(L))
    if r.random() < 0.5:
        _try_wall(L, _b_cabinet(L, 'cabinet', h=float(r.uniform(1.8, 2.1))))
    table = _b_table(L, 'table')
    tp = _try_free(L, table, snap=True)
    if tp is not None:
        _chairs_around(L, *tp, table[1], table[2], int(r.integers(2, 5)))
    _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_free(L, _b_box(L))
    _add_pictures(L, int(r.integers(0, 2)))


def _recipe_bathroom(L: _Layout) -> None:
    r = L.rng
    _try_wall(L, _b_bathtub(L), gap=0.005)
    _try_wall(L, _b_toilet(L), gap=0.03)
    if r.random() < 0.5:
        _try_wall(L, _b_sink(L), gap=0.02)
    else:   # vanity cabinet with a sink basin on top
        vw = float(r.uniform(0.6, 1.0))
        van = _b_cabinet(L, 'bathroom vanity', h=0.82, d=0.5, w=vw)
        pose = L.place_wall(vw, 0.5, 0.82)
        if pose is not None:
            x, y, yaw, wl, u = pose
            ids = L.commit(van[0], x, y, yaw, vw, 0.5, 0.82, True, wall=wl, u=u)
            sprims = _basin(-0.22, -0.16, 0.22, 0.16, 0.823, 0.15)
            sprims += _cyl(0, 0.2, 0.82, 0.02, 0.25, color=L.color('metal'))
            L.commit([_Obj('sink', L.color('sink', 6), sprims)], x, y, yaw, 0.44, 0.32, 0.2,
                     False, footprint=False)
            L.occluders.append(_Occluder(x, y, 0.22, 0.16, yaw, 0.5, 0.9, tuple(ids)))
    if r.random() < 0.5:
        _try_wall(L, _b_cabinet(L, 'cabinet', h=float(r.uniform(0.8, 1.8)), d=0.35))
    _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)


def _recipe_office(L: _Layout) -> None:
    r = L.rng
    for _ in range(int(r.integers(1, 4))):
        desk = _b_desk(L)
        dp = _try_wall(L, desk) if r.random() < 0.7 else _try_free(L, desk, snap=True)
        if dp is not None:
            _chairs_around(L, *dp, desk[1], desk[2], 1, 'office chair', front_only=True)
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_bookshelf(L))
    _try_wall(L, _b_cabinet(L, 'cabinet'))
    if r.random() < 0.6:
        table = _b_table(L, 'table')
        tp = _try_free(L, table, snap=True)
        if tp is not None:
            _chairs_around(L, *tp, table[1], table[2], int(r.integers(1, 4)))
    for _ in range(int(r.integers(1, 3))):
        _try_wall(L, _b_trash(L))
    if r.random() < 0.5:
        _try_wall(L, _b_radiator(L), gap=0.04)
    _add_pictures(L, int(r.integers(0, 3)))


_RECIPES: dict[str, Callable[[_Layout], None]] = {
    'bedroom': _recipe_bedroom, 'living': _recipe_living, 'kitchen': _recipe_kitchen,
    'bathroom': _recipe_bathroom, 'office': _recipe_office}


def _x_desk(L: _Layout, chair: str = 'office chair') -> None:
    desk = _b_desk(L)
    dp = _try_wall(L, desk)
    if dp is not None:
        _chairs_around(L, *dp, desk[1], desk[2], 1, chair, front_only=True)


def _x_table(L: _Layout) -> None:
    table = _b_table(L, 'table')
    tp = _try_free(L, table, snap=True)
    if tp is not None:
        _chairs_around(L, *tp, table[1], table[2], int(L.rng.integers(1, 5)))


_EXTRAS: dict[str, list[Callable[[_Layout], Any]]] = {
    'bedroom': [lambda L: _try_wall(L, _b_cabinet(L)), lambda L: _try_wall(L, _b_bookshelf(L)),
                lambda L: _try_free(L, _b_chair(L)), lambda L: _x_desk(L, 'chair'),
                lambda L: _try_free(L, _b_ottoman(L))],
    'living': [lambda L: _try_free(L, _b_chair(L, 'armchair')),
               lambda L: _try_wall(L, _b_bookshelf(L)), lambda L: _try_wall(L, _b_cabinet(L)),
               _x_table, lambda L: _try_wall(L, _b_sofa(L)),
               lambda L: _try_free(L, _b_ottoman(L))],
    'kitchen': [lambda L: _try_wall(L, _b_cabinet(L)), lambda L: _try_free(L, _b_chair(L)),
                lambda L: _try_wall(L, _b_trash(L)), lambda L: _try_free(L, _b_box(L))],
    'bathroom': [lambda L: _try_wall(L, _b_cabinet(L, h=float(L.rng.uniform(0.8, 1.8)), d=0.35)),
                 lambda L: _try_free(L, _b_box(L))],
    'office': [_x_desk, lambda L: _try_wall(L, _b_bookshelf(L)),
               lambda L: _try_wall(L, _b_cabinet(L)), _x_table,
               lambda L: _try_free(L, _b_chair(L, 'office chair')),
               lambda L: _try_wall(L, _b_trash(L))],
}


def _add_extras(L: _Layout) -> None:
    """More furniture in bigger rooms (about one extra piece per 7 m2 of floor)."""
    pool = _EXTRAS[L.kind]
    area = L.W * L.D - (0.0 if L.notch is None else float(np.prod(np.ptp(L.notch, 0))))
    for _ in range(int(area / 7.0 * L.rng.uniform(0.7, 1.3))):
        pool[int(L.rng.integers(len(pool)))](L)


def _add_clutter(L: _Layout) -> None:
    r = L.rng
    for _ in range(int(r.integers(1, 4))):
        if r.random() < 0.5:
            _try_free(L, _b_box(L))
        else:
            _try_free(L, _b_clutter(L))


# ------------------------------------------------------------------------------------------------
# Scene assembly


@dataclass
class DemoScene:
    """One generated scene, ready to be written.

    Attributes:
        coord: (N, 3) float32 raw-frame vertex coordinates.
        color: (N, 3) uint8.
        faces: (F, 3) int32.
        seg_indices: (N,) int64 segment id per vertex (arbitrary, non-contiguous).
        seg_groups: aggregation ``segGroups`` ({id, objectId, segments, label}).
        nyu40: (N,) int64 nyu40 id per vertex (0 = in no group), as in ``labels.ply``.
        axis_align: (4, 4) float64, aligned = A @ raw; None for test scenes.
        scene_type: ScanNet ``sceneType`` string.
    """
    coord: np.ndarray
    color: np.ndarray
    faces: np.ndarray
    seg_indices: np.ndarray
    seg_groups: list[dict[str, Any]]
    nyu40: np.ndarray
    axis_align: np.ndarray | None
    scene_type: str


def _tessellate_scene(L: _Layout, h: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                 np.ndarray]:
    """All objects at spacing h. Returns verts, faces, normals, obj id, prim id, colour."""
    vs, fs, ns, oid, pid, cols = [], [], [], [], [], []
    off, pk = 0, 0
    for k, obj in enumerate(L.objs):
        for prim in obj.prims:
            v, f, n = _tessellate(prim, h, rng)
            vs.append(v)
            fs.append(f + off)
            ns.append(np.broadcast_to(n, v.shape))
            oid.append(np.full(len(v), k, np.int64))
            pid.append(np.full(len(v), pk, np.int64))
            base = obj.color if prim.color is None else prim.color
            cols.append(np.broadcast_to(base, v.shape))
            off += len(v)
            pk += 1
    return (np.concatenate(vs), np.concatenate(fs), np.concatenate(ns), np.concatenate(oid),
            np.concatenate(pid), np.concatenate(cols))


def _visible_mask(L: _Layout, verts: np.ndarray, oid: np.ndarray,
                  holes: list[tuple[int, np.ndarray, float]]) -> np.ndarray:
    keep = np.ones(len(verts), bool)
    for oc in L.occluders:
        sel = np.isin(oid, oc.targets)
        if not sel.any():
            continue
        p = verts[sel]
        c, s = math.cos(oc.yaw), math.sin(oc.yaw)
        dx, dy = p[:, 0] - oc.cx, p[:, 1] - oc.cy
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        inside = (np.abs(lx) < oc.hx) & (np.abs(ly) < oc.hy) & (p[:, 2] > oc.z0) & (p[:, 2] < oc.z1)
        idx = np.flatnonzero(sel)
        keep[idx[inside]] = False
    for obj_k, centre, rad in holes:
        sel = oid == obj_k
        d = np.linalg.norm(verts[sel] - centre, axis=1)
        keep[np.flatnonzero(sel)[d < rad]] = False
    return keep


def _pick_holes(L: _Layout, rng: np.random.Generator) -> list[tuple[int, np.ndarray, float]]:
    """Random scan gaps: (object index, centre on its surface, radius)."""
    areas = np.array([sum(p.area() for p in o.prims) * o.hole_weight for o in L.objs])
    n = int(rng.integers(6, 14))
    holes = []
    for k in rng.choice(len(L.objs), size=n, p=areas / areas.sum()):
        obj = L.objs[int(k)]
        pa = np.array([p.area() for p in obj.prims])
        prim = obj.prims[int(rng.choice(len(pa), p=pa / pa.sum()))]
        a, b = rng.random(2)
        if prim.kind == 'grid':
            c = prim.p[0] + a * prim.p[1] + b * prim.p[2]
        else:
            r_, hh = float(prim.p[1][0]), float(prim.p[1][1])
            th = 2 * math.pi * a
            c = prim.p[0] + _v(r_ * math.cos(th), r_ * math.sin(th), b * hh if prim.kind == 'cyl'
                               else 0.0)
        holes.append((int(k), c, float(rng.uniform(0.08, 0.35))))
    return holes


def _axis_alignment(rng: np.random.Generator, L: _Layout) -> np.ndarray:
    """Random z-rotation + translation, rounded to the 6 decimals of the .txt."""
    th = float(rng.uniform(-math.pi, math.pi))
    a = np.eye(4)
    a[:3, :3] = _rotz(th)
    a[:3, 3] = (rng.uniform(-1.0, 1.0) * L.W / 2, rng.uniform(-1.0, 1.0) * L.D / 2,
                rng.uniform(-0.1, 0.1))
    return np.round(a, 6) + 0.0


def make_demo_scene(seed: int | Sequence[int], points: int = 30000, kind: str | None = None,
                    labelled: bool = True) -> DemoScene:
    """Generate one scene (not written).

    Args:
        seed: RNG seed (int or sequence of ints).
        points: approximate number of mesh vertices.
        kind: 'bedroom' | 'living' | 'kitchen' | 'bathroom' | 'office' (random if None).
        labelled: False for a test-split scene (axis_align None; labels still computed).
    """
    rng = np.random.default_rng(seed)
    if kind is None:
        kind = str(rng.choice(list(_RECIPES)))
    L = _Layout(rng, kind)
    _build_shell(L)
    _RECIPES[kind](L)
    _add_extras(L)
    _add_clutter(L)

    holes = _pick_holes(L, rng)
    tess_seed = int(rng.integers(2 ** 31))
    area = sum(p.area() for o in L.objs for p in o.prims)
    h = math.sqrt(area / (points * 1.15))
    for it in range(4):  # correct the spacing so the *visible* vertex count is near `points`
        trng = np.random.default_rng(tess_seed)
        verts, faces, normals, oid, pid, base = _tessellate_scene(L, h, trng)
        keep = _visible_mask(L, verts, oid, holes)
        n_vis = int(keep.sum())
        if it == 3 or abs(n_vis - points) <= 0.06 * points:
            break
        # small primitives have a minimum vertex count, so over-correct a little when too many
        h *= (n_vis / points) ** (0.5 if n_vis < points else 0.75)

    # drop hidden vertices and faces touching them
    new_index = np.cumsum(keep) - 1
    faces = faces[keep[faces].all(1)]
    faces = new_index[faces]
    verts, normals, oid, pid, base = verts[keep], normals[keep], oid[keep], pid[keep], base[keep]
    n = len(verts)

    # positional noise (~5 mm) and colours: base * shading + per-vertex noise
    verts = verts + rng.normal(0, 0.005, verts.shape)
    shade = 0.82 + 0.12 * np.abs(normals[:, 2]) + 0.06 * normals[:, 0]
    shade = shade * (1.0 - 0.05 * np.clip(2.2 - verts[:, 2], 0, 2.2) / 2.2)
    color = base * shade[:, None] + rng.normal(0, 7.0, (n, 3))
    color = np.clip(np.rint(color), 0, 255).astype(np.uint8)

    # shuffle vertex order (real meshes are not stored object by object)
    perm = rng.permutation(n)
    inv = np.empty(n, np.int64)
    inv[perm] = np.arange(n)
    verts, color, oid, pid = verts[perm], color[perm], oid[perm], pid[perm]
    faces = inv[faces]
    faces = faces[rng.permutation(len(faces))]

    # over-segmentation: voxel clusters per (object, primitive); id = smallest vertex index
    vox = float(rng.uniform(0.3, 0.5))
    origin = rng.uniform(0, vox, 3)
    key = np.floor((verts - origin) / vox).astype(np.int64)
    _, cluster = np.unique(np.column_stack([oid, pid, key]), axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    first = np.full(cluster.max() + 1, n, np.int64)
    np.minimum.at(first, cluster, np.arange(n))
    seg_indices = first[cluster]

    # aggregation: one group per annotated object; a few segments left unannotated
    groups: list[dict[str, Any]] = []
    nyu40 = np.zeros(n, np.int64)
    seg_obj = np.full(n + 1, -1, np.int64)
    seg_obj[seg_indices] = oid
    for k, obj in enumerate(L.objs):
        if obj.label is None:
            continue
        segs = np.flatnonzero(seg_obj[:n] == k)
        if len(segs) == 0:
            continue
        if len(segs) > 3:
            drop = rng.random(len(segs)) < 0.03
            segs = segs[~drop]
        gid = len(groups)
        groups.append({'id': gid, 'objectId': gid, 'segments': [int(s) for s in segs],
                       'label': obj.label})
        nyu40[np.isin(seg_indices, segs)] = RAW_IDS[obj.label][1]

    align = _axis_alignment(rng, L)
    hom = np.column_stack([verts, np.ones(n)])
    raw = (np.linalg.inv(align) @ hom.T).T[:, :3]
    return DemoScene(coord=raw.astype(np.float32), color=color, faces=faces.astype(np.int32),
                     seg_indices=seg_indices, seg_groups=groups, nyu40=nyu40,
                     axis_align=align if labelled else None, scene_type=SCENE_TYPES[kind])


# ------------------------------------------------------------------------------------------------
# Writers (real raw ScanNet formats)


def write_ply_mesh(path: str | os.PathLike[str], coord: np.ndarray, color: np.ndarray,
                   faces: np.ndarray, label: np.ndarray | None = None,
                   comment: str = 'VCGLIB generated') -> None:
    """Write a binary little-endian PLY exactly like ScanNet's ``_vh_clean_2(.labels).ply``.

    Vertex properties x, y, z (float), red, green, blue, alpha (uchar) [, label (ushort)];
    face ``property list uchar int vertex_indices``. The header comes from plyfile; element data
    are packed with numpy (byte-identical to ``PlyData.write``, which loops in Python).

    Args:
        coord: (N, 3) float; color: (N, 3) uint8; faces: (F, 3) int; label: (N,) nyu40 ids.
    """
    n = len(coord)
    vdt = [('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'),
           ('blue', 'u1'), ('alpha', 'u1')]
    if label is not None:
        vdt.append(('label', '<u2'))
    vert = np.empty(n, dtype=vdt)
    vert['x'], vert['y'], vert['z'] = coord[:, 0], coord[:, 1], coord[:, 2]
    vert['red'], vert['green'], vert['blue'] = color[:, 0], color[:, 1], color[:, 2]
    vert['alpha'] = 255
    if label is not None:
        vert['label'] = label
    face = np.empty(len(faces), dtype=[('vertex_indices', '<i4', (3,))])
    face['vertex_indices'] = faces
    ply = PlyData([PlyElement.describe(vert, 'vertex'),
                   PlyElement.describe(face, 'face', len_types={'vertex_indices': 'u1'})],
                  text=False, byte_order='<', comments=[comment])
    packed = np.empty(len(faces), dtype=[('n', 'u1'), ('v', '<i4', (3,))])  # packed: 13 bytes
    packed['n'] = 3
    packed['v'] = faces
    with open(path, 'wb') as f:
        f.write(ply.header.encode('ascii') + b'\n')
        f.write(vert.tobytes())
        f.write(packed.tobytes())


def write_label_tsv(path: str | os.PathLike[str], categories: Sequence[str] | None = None) -> None:
    """Write ``scannetv2-labels.combined.tsv`` (17 real columns, LF) with the rows of
    ``categories`` (default: every row this module knows)."""
    names = list(TSV_ROWS) if categories is None else list(categories)
    lines = ['\t'.join(TSV_COLUMNS)] + ['\t'.join(TSV_ROWS[c]) for c in names]
    Path(path).write_text('\n'.join(lines) + '\n')


_SEGS_PARAMS = {'kThresh': '0.0001', 'segMinVerts': '20', 'minPoints': '750', 'maxPoints': '30000',
                'thinThresh': '0.05', 'flatThresh': '0.001', 'minLength': '0.02',
                'maxLength': '1'}


def _fmt(vals: Sequence[float]) -> str:
    return ' '.join(f'{float(v) + 0.0:.6f}' for v in vals)


def write_scannet_scene(scene_dir: str | os.PathLike[str], scene_id: str, scene: DemoScene,
                        labelled: bool = True, frames: int = 1000) -> None:
    """Write one scene's raw files into ``scene_dir`` (labelled: + segs, aggregation, labels)."""
    d = Path(scene_dir)
    d.mkdir(parents=True, exist_ok=True)
    write_ply_mesh(d / f'{scene_id}_vh_clean_2.ply', scene.coord, scene.color, scene.faces)
    meta = []
    if labelled and scene.axis_align is not None:
        meta.append(f'axisAlignment = {_fmt(scene.axis_align.reshape(-1))}')
    ext = np.eye(4)
    meta += ['colorHeight = 968', f'colorToDepthExtrinsics = {_fmt(ext.reshape(-1))}',
             'colorWidth = 1296', 'depthHeight = 480', 'depthWidth = 640',
             'fx_color = 1170.187988', 'fx_depth = 571.623718', 'fy_color = 1170.187988',
             'fy_depth = 571.623718', 'mx_color = 647.750000', 'mx_depth = 319.500000',
             'my_color = 483.750000', 'my_depth = 239.500000', f'numColorFrames = {frames}',
             f'numDepthFrames = {frames}', f'numIMUmeasurements = {2 * frames + 7}',
             f'sceneType = {scene.scene_type}']
    (d / f'{scene_id}.txt').write_text('\n'.join(meta) + '\n')
    if not labelled:
        return
    segs = {'params': _SEGS_PARAMS, 'sceneId': f'{scene_id}_vh_clean_2',
            'segIndices': [int(s) for s in scene.seg_indices]}
    (d / f'{scene_id}_vh_clean_2.0.010000.segs.json').write_text(json.dumps(segs))
    agg = {'sceneId': f'scannet.{scene_id}', 'appId': 'Aggregator.v2',
           'segGroups': scene.seg_groups,
           'segmentsFile': f'scannet.{scene_id}_vh_clean_2.0.010000.segs.json'}
    (d / f'{scene_id}.aggregation.json').write_text(json.dumps(agg))
    write_ply_mesh(d / f'{scene_id}_vh_clean_2.labels.ply', scene.coord,
                   NYU40_PALETTE[np.clip(scene.nyu40, 0, 40)], scene.faces, label=scene.nyu40,
                   comment='MLIB generated')


def demo_scene_ids(num_train: int, num_val: int, num_test: int) -> dict[str, list[str]]:
    """Scene ids per split: train/val from scene0000_00, test from scene0707_00 (as the real
    test split) or right after train+val if that overlaps."""
    tv = [f'scene{k:04d}_00' for k in range(num_train + num_val)]
    start = max(707, num_train + num_val)
    return {'train': tv[:num_train], 'val': tv[num_train:],
            'test': [f'scene{start + k:04d}_00' for k in range(num_test)]}


def make_demo_scannet(out_dir: str | os.PathLike[str], num_train: int = 12, num_val: int = 4,
                      num_test: int = 1, seed: int = 0, points_per_scene: int = 30000
                      ) -> list[str]:
    """Write a demo dataset in the raw ScanNet v2 layout; returns the scene ids written.

    Room kinds run through shuffled cycles of all five kinds (train sees each kind at least
    twice with the default 12 scenes); each scene's RNG is seeded from (seed, scene number), so
    the same arguments give byte-identical files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = demo_scene_ids(num_train, num_val, num_test)
    total = num_train + num_val + num_test
    kind_rng = np.random.default_rng([seed, 7919])
    kinds = [k for _ in range(total // len(_RECIPES) + 1)
             for k in kind_rng.permutation(list(_RECIPES))][:total]
    written: list[str] = []
    used = set()
    k = 0
    for split in ('train', 'val', 'test'):
        for scene_id in ids[split]:
            labelled = split != 'test'
            scene = make_demo_scene([seed, k], points_per_scene, kind=str(kinds[k]),
                                    labelled=labelled)
            sub = 'scans' if labelled else 'scans_test'
            write_scannet_scene(out / sub / scene_id, scene_id, scene, labelled=labelled)
            used.update(g['label'] for g in scene.seg_groups)
            written.append(scene_id)
            k += 1
    for split, lst in ids.items():
        (out / f'scannetv2_{split}.txt').write_text(''.join(f'{i}\n' for i in lst))
    write_label_tsv(out / 'scannetv2-labels.combined.tsv',
                    [c for c in TSV_ROWS if c in used])
    return written
