"""Scene assembly of the demo generator: tessellation, occlusion and scan holes, noise and
colours, vertex shuffling, over-segmentation, aggregation and the axis alignment."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .labels import RAW_IDS, SCENE_TYPES
from .layout import _Layout, _rotz
from .primitives import _tessellate, _v
from .recipes import _RECIPES, _add_clutter, _add_extras
from .shell import _build_shell

# ------------------------------------------------------------------------------------------------
# Scene assembly


@dataclass
class DemoRoom:
    """Room geometry in the ALIGNED frame (floor z = 0), kept for placing demo cameras.

    Attributes:
        polygon: (K, 2) room outline, counter-clockwise.
        height: wall height (m).
        footprints: (4, 2) corners of every placed piece of furniture.
        align: (4, 4) float64, aligned = align @ raw (also for test scenes, whose ``.txt`` has
            no axisAlignment).
    """
    polygon: np.ndarray
    height: float
    footprints: list[np.ndarray]
    align: np.ndarray


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
        room: the room outline and the alignment (used to place cameras for RGB-D frames).
    """
    coord: np.ndarray
    color: np.ndarray
    faces: np.ndarray
    seg_indices: np.ndarray
    seg_groups: list[dict[str, Any]]
    nyu40: np.ndarray
    axis_align: np.ndarray | None
    scene_type: str
    room: DemoRoom | None = None


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
                     axis_align=align if labelled else None, scene_type=SCENE_TYPES[kind],
                     room=DemoRoom(polygon=L.poly.copy(), height=float(L.H),
                                   footprints=[f.copy() for f in L.footprints], align=align))
