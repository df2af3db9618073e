"""ScanNet v2 raw scans -> per-scene ``.npy`` arrays.

Input (the official download, see ``shared/reference/dataset-formats.md`` §1)::

    ROOT/scans/<id>/        <id>_vh_clean_2.ply, <id>_vh_clean_2.labels.ply,
                            <id>_vh_clean_2.0.010000.segs.json, <id>.aggregation.json, <id>.txt
    ROOT/scans_test/<id>/   <id>_vh_clean_2.ply, <id>.txt   (no labels, no axisAlignment)
    ROOT/scannetv2-labels.combined.tsv
    ROOT/scannetv2_{train,val,test}.txt   (or ROOT/splits/..., or ``split_dir``)

Output::

    OUT/scenes/<id>/coord.npy              (N, 3) float32  raw vertex coordinates (not aligned)
                    color.npy              (N, 3) uint8
                    normal.npy             (N, 3) float32  unit area-weighted vertex normals
                    segment20.npy          (N,)   int16    0..19, -1 = ignore
                    segment200.npy         (N,)   int16    0..199, -1 = ignore
                    instance.npy           (N,)   int16    0-based segGroup id, -1 = no group
                    axis_align_matrix.npy  (4, 4) float32  aligned = A @ [x, y, z, 1]
    OUT/splits/{train,val,test}.txt        converted scene ids, in split-file order
    OUT/meta.json                          label sets, counts, converter version
    OUT/failed.txt                         one line per failed scene (absent when none)

Each scene directory is written atomically, so an existing ``OUT/scenes/<id>/`` is complete and
a re-run skips it unless ``overwrite``.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from plyfile import PlyData, PlyElementParseError

from geo3d.datasets.scannet_constants import (CLASS_LABELS_20, CLASS_LABELS_200, IGNORE_INDEX,
                                              VALID_CLASS_IDS_20, VALID_CLASS_IDS_200)
from geo3d.utils.io import (atomic_dir, atomic_write_json, atomic_write_text, remove_stale_tmp)

__all__ = [
    'CONVERTER_VERSION', 'SPLITS', 'SceneError', 'InputError', 'SceneResult', 'ConvertReport',
    'read_label_map', 'read_split_files', 'read_mesh', 'read_vertex_labels', 'read_segs',
    'read_aggregation', 'read_axis_alignment', 'compute_vertex_normals', 'derive_labels',
    'nyu40_to_scannet20', 'scene_paths', 'process_scene', 'convert_scene', 'convert', 'main',
]

CONVERTER_VERSION = '1.0.0'
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
TSV_NAME = 'scannetv2-labels.combined.tsv'
SPLIT_SOURCE = ('the ScanNet repository, Tasks/Benchmark/scannetv2_{train,val,test}.txt '
                '(https://github.com/ScanNet/ScanNet/tree/master/Tasks/Benchmark)')
SCENE_ID_RE = re.compile(r'^scene\d{4}_\d{2}$')
ARRAY_FILES: tuple[str, ...] = ('coord', 'color', 'normal', 'segment20', 'segment200', 'instance',
                                'axis_align_matrix')
MISMATCH_WARN = 0.01  # warn when labels.ply disagrees with the derived labels on >1% of vertices


class SceneError(Exception):
    """A scene cannot be converted: ``path`` is the offending file, ``reason`` says why."""

    def __init__(self, scene_id: str, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f'{scene_id}: {path}: {reason}')
        self.scene_id = scene_id
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (SceneError, (self.scene_id, self.path, self.reason))


class InputError(Exception):
    """Bad global input (missing root, split files or tsv): nothing can be converted."""


@dataclass
class SceneResult:
    """Outcome of one successfully converted scene."""
    scene_id: str
    split: str
    points: int
    label_mismatch: float | None = None  # labels.ply vs derived segment20; None for test
    warnings: list[str] = field(default_factory=list)
    class_points20: list[int] | None = None
    class_points200: list[int] | None = None


@dataclass
class ConvertReport:
    """Summary of a :func:`convert` run. ``failed`` holds ``(scene_id, file, reason)``."""
    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    points: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = max(self.seconds, 1e-9)
        return (f'scannet: {self.converted} converted, {self.skipped} skipped (done before), '
                f'{len(self.failed)} failed, {self.points:,} points in {self.seconds:.1f} s '
                f'({self.converted / s:.1f} scenes/s, {self.points / s:,.0f} points/s)')


# ------------------------------------------------------------------------------------------------
# Global inputs: label map and split files


def read_label_map(tsv_path: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Parse ``scannetv2-labels.combined.tsv`` into ``raw_category -> (id, nyu40id)``.

    Tolerates LF, CRLF and ``\\r\\r\\n`` line endings, a missing final newline and short rows.
    Rows whose ``id`` or ``nyu40id`` is empty or not an integer are kept with 0 for that value.
    A repeated ``raw_category`` keeps its last row (as the official and mmdet3d readers do).
    """
    path = Path(tsv_path)
    try:
        text = path.read_bytes().decode('utf-8-sig')
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f'cannot read label map {path}: {e}') from e
    lines = [ln.rstrip('\r') for ln in text.split('\n')]
    lines = [ln for ln in lines if ln.strip()]
    reader = csv.DictReader(lines, delimiter='\t')
    fields = reader.fieldnames or []
    missing = [c for c in ('id', 'raw_category', 'nyu40id') if c not in fields]
    if missing:
        raise InputError(f'label map {path} lacks column(s) {missing}; header is {fields}')

    def to_int(v: str | None) -> int:
        try:
            return int(str(v).strip())
        except ValueError:
            return 0

    mapping: dict[str, tuple[int, int]] = {}
    for row in reader:
        raw = row.get('raw_category')
        if raw is None:
            continue
        mapping[raw] = (to_int(row.get('id')), to_int(row.get('nyu40id')))
    return mapping


def find_split_file(root: Path, split: str, split_dir: Path | None) -> Path | None:
    """First existing ``scannetv2_<split>.txt`` in split_dir, ROOT, ROOT/splits."""
    dirs = ([split_dir] if split_dir is not None else []) + [root, root / 'splits']
    for d in dirs:
        p = d / f'scannetv2_{split}.txt'
        if p.is_file():
            return p
    return None


def read_split_files(root: str | os.PathLike[str], split_dir: str | os.PathLike[str] | None = None,
                     splits: Sequence[str] = SPLITS) -> dict[str, list[str]]:
    """Read the official split lists; raises :class:`InputError` naming where to get them."""
    root = Path(root)
    sd = Path(split_dir) if split_dir is not None else None
    out: dict[str, list[str]] = {}
    missing = []
    for split in splits:
        p = find_split_file(root, split, sd)
        if p is None:
            missing.append(f'scannetv2_{split}.txt')
            continue
        ids = [ln.strip() for ln in p.read_text().splitlines()]
        out[split] = [i for i in ids if i]
    if missing:
        where = ', '.join(str(d) for d in ([sd] if sd else []) + [root, root / 'splits'])
        raise InputError(f'split file(s) {", ".join(missing)} not found in {where}. '
                         f'Get them from {SPLIT_SOURCE} and put them in ROOT or pass --split-dir.')
    seen: dict[str, str] = {}
    for split, ids in out.items():
        for i in ids:
            if i in seen and seen[i] != split:
                raise InputError(f'scene {i} is listed in both {seen[i]} and {split} split files')
            seen[i] = split
    return out


# ------------------------------------------------------------------------------------------------
# Per-scene readers (each raises SceneError naming the file)


def scene_paths(scene_dir: str | os.PathLike[str], scene_id: str) -> dict[str, Path]:
    """The raw files of one scene, by role."""
    d = Path(scene_dir)
    return {
        'mesh': d / f'{scene_id}_vh_clean_2.ply',
        'labels': d / f'{scene_id}_vh_clean_2.labels.ply',
        'segs': d / f'{scene_id}_vh_clean_2.0.010000.segs.json',
        'aggregation': d / f'{scene_id}.aggregation.json',
        'meta': d / f'{scene_id}.txt',
    }


def _require(scene_id: str, path: Path) -> None:
    if not path.is_file():
        raise SceneError(scene_id, path, 'missing file')


def _read_ply(path: Path, scene_id: str) -> PlyData:
    _require(scene_id, path)
    try:
        try:
            return PlyData.read(str(path), known_list_len={'face': {'vertex_indices': 3}})
        except PlyElementParseError as e:
            if 'unexpected list length' not in str(e):
                raise
            return PlyData.read(str(path), mmap=False)  # polygon faces: slow generic path
    except SceneError:
        raise
    except Exception as e:  # plyfile raises several types on truncated / corrupt input
        raise SceneError(scene_id, path, f'corrupt or truncated PLY ({type(e).__name__}: {e})')


def _vertex_element(ply: PlyData, path: Path, scene_id: str, props: Sequence[str]) -> np.ndarray:
    names = [e.name for e in ply.elements]
    if 'vertex' not in names:
        raise SceneError(scene_id, path, f'PLY has no vertex element (elements: {names})')
    v = ply['vertex'].data
    have = v.dtype.names or ()
    missing = [p for p in props if p not in have]
    if missing:
        raise SceneError(scene_id, path,
                         f'PLY vertex lacks properties {missing} (has {list(have)})')
    return v


def _faces(ply: PlyData, path: Path, scene_id: str, num_vertices: int) -> np.ndarray:
    """(F, 3) int64 triangle indices; polygons are fan-triangulated; no face element -> (0, 3)."""
    if 'face' not in [e.name for e in ply.elements]:
        return np.zeros((0, 3), np.int64)
    data = ply['face'].data
    if 'vertex_indices' not in (data.dtype.names or ()):
        raise SceneError(scene_id, path, 'PLY face element lacks vertex_indices')
    vi = data['vertex_indices']
    if vi.dtype != object:
        faces = np.asarray(vi, dtype=np.int64).reshape(len(data), -1)
    else:
        tris = []
        for poly in vi:
            poly = np.asarray(poly, np.int64)
            for k in range(1, len(poly) - 1):
                tris.append((poly[0], poly[k], poly[k + 1]))
        faces = np.asarray(tris, np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise SceneError(scene_id, path, f'face index out of range [0, {num_vertices}) '
                         f'(min {faces.min()}, max {faces.max()})')
    return faces


def read_mesh(path: str | os.PathLike[str], scene_id: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``_vh_clean_2.ply``.

    Returns:
        coord (N, 3) float32, color (N, 3) uint8, faces (F, 3) int64.
    """
    path = Path(path)
    ply = _read_ply(path, scene_id)
    try:
        v = _vertex_element(ply, path, scene_id, ('x', 'y', 'z', 'red', 'green', 'blue'))
        coord = np.stack([v['x'], v['y'], v['z']], axis=1).astype(np.float32)
        color = np.stack([v['red'], v['green'], v['blue']], axis=1).astype(np.uint8)
        faces = _faces(ply, path, scene_id, len(coord))
    except SceneError:
        raise
    except Exception as e:
        raise SceneError(scene_id, path, f'corrupt or truncated PLY ({type(e).__name__}: {e})')
    if not np.isfinite(coord).all():
        raise SceneError(scene_id, path, 'non-finite vertex coordinates')
    return coord, color, faces


def read_vertex_labels(path: str | os.PathLike[str], scene_id: str) -> np.ndarray:
    """``label`` property (nyu40 id) of ``_vh_clean_2.labels.ply`` as (N,) int64."""
    path = Path(path)
    ply = _read_ply(path, scene_id)
    v = _vertex_element(ply, path, scene_id, ('label',))
    return np.asarray(v['label'], dtype=np.int64)


def _read_json(path: Path, scene_id: str) -> Any:
    _require(scene_id, path)
    try:
        with open(path, 'rb') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SceneError(scene_id, path, f'invalid JSON ({e})')
    except OSError as e:
        raise SceneError(scene_id, path, f'cannot read ({e})')


def read_segs(path: str | os.PathLike[str], scene_id: str) -> np.ndarray:
    """``segIndices`` of the over-segmentation JSON as (N,) int64 (arbitrary ids >= 0)."""
    path = Path(path)
    obj = _read_json(path, scene_id)
    if not isinstance(obj, dict) or 'segIndices' not in obj:
        raise SceneError(scene_id, path, 'no "segIndices" key')
    try:
        seg = np.asarray(obj['segIndices'], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise SceneError(scene_id, path, f'"segIndices" is not a list of integers ({e})')
    if seg.ndim != 1:
        raise SceneError(scene_id, path, '"segIndices" is not a flat list')
    if seg.size and seg.min() < 0:
        raise SceneError(scene_id, path, f'negative segment id {seg.min()}')
    return seg


def read_aggregation(path: str | os.PathLike[str], scene_id: str) -> list[dict[str, Any]]:
    """``segGroups`` of ``.aggregation.json``: dicts with int ``id``, list ``segments``, str
    ``label``."""
    path = Path(path)
    obj = _read_json(path, scene_id)
    if not isinstance(obj, dict) or not isinstance(obj.get('segGroups'), list):
        raise SceneError(scene_id, path, 'no "segGroups" list')
    groups = []
    for k, g in enumerate(obj['segGroups']):
        try:
            gid = int(g.get('id', g.get('objectId')))
            segs = [int(s) for s in g['segments']]
            label = str(g['label'])
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise SceneError(scene_id, path, f'malformed segGroup #{k} ({type(e).__name__}: {e})')
        if not 0 <= gid <= np.iinfo(np.int16).max:
            raise SceneError(scene_id, path, f'segGroup id {gid} outside int16 range')
        groups.append({'id': gid, 'segments': segs, 'label': label})
    return groups


def read_axis_alignment(path: str | os.PathLike[str], scene_id: str) -> np.ndarray | None:
    """The row-major 4x4 ``axisAlignment`` of ``<id>.txt`` (float64), None if the key is absent."""
    path = Path(path)
    _require(scene_id, path)
    try:
        text = path.read_text(errors='replace')
    except OSError as e:
        raise SceneError(scene_id, path, f'cannot read ({e})')
    for line in text.splitlines():
        key, sep, val = line.partition('=')
        if sep and key.strip() == 'axisAlignment':
            try:
                vals = [float(t) for t in val.split()]
            except ValueError:
                raise SceneError(scene_id, path, f'axisAlignment is not numeric: {val.strip()!r}')
            if len(vals) != 16 or not np.isfinite(vals).all():
                raise SceneError(scene_id, path,
                                 f'axisAlignment has {len(vals)} values, expected 16 finite')
            return np.asarray(vals, dtype=np.float64).reshape(4, 4)
    return None


# ------------------------------------------------------------------------------------------------
# Geometry and labels


def compute_vertex_normals(coord: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Each face's un-normalised cross product ``(v1 - v0) x (v2 - v0)`` (length = 2 * area) is added
    to its three vertices, then the sums are normalised. Vertices in no face, or whose sum
    vanishes, get (0, 0, 1).

    Args:
        coord: (N, 3) float vertex positions.
        faces: (F, 3) int vertex indices (counter-clockwise seen from outside -> outward).

    Returns:
        (N, 3) float32 unit normals.
    """
    n = len(coord)
    out = np.zeros((n, 3), np.float64)
    if len(faces):
        p = np.asarray(coord, np.float64)
        f = np.asarray(faces, np.int64)
        fn = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])  # (F, 3)
        idx = f.reshape(-1)                                                 # (3F,)
        for c in range(3):
            out[:, c] = np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=n)
    length = np.linalg.norm(out, axis=1)
    scale = np.where(length > 0, length, 1.0)
    ok = length > 1e-12 * max(1.0, float(np.abs(coord).max(initial=0.0))) ** 2
    out = np.where(ok[:, None], out / scale[:, None], np.array([0.0, 0.0, 1.0]))
    return out.astype(np.float32)


def _lookup_table(ids: Sequence[int]) -> np.ndarray:
    """Dense int16 table raw id -> position in ``ids``, -1 elsewhere."""
    table = np.full(max(ids) + 1, IGNORE_INDEX, np.int16)
    table[np.asarray(ids)] = np.arange(len(ids), dtype=np.int16)
    return table


_TABLE20 = _lookup_table(VALID_CLASS_IDS_20)
_TABLE200 = _lookup_table(VALID_CLASS_IDS_200)


def _map_ids(raw: np.ndarray, table: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, np.int64)
    ok = (raw >= 0) & (raw < len(table))
    return np.where(ok, table[np.clip(raw, 0, len(table) - 1)], IGNORE_INDEX).astype(np.int16)


def nyu40_to_scannet20(nyu40: np.ndarray) -> np.ndarray:
    """nyu40 ids -> ScanNet20 training index (int16, -1 for anything not in the 20 classes)."""
    return _map_ids(nyu40, _TABLE20)


def scannet200_index(raw_id: np.ndarray) -> np.ndarray:
    """tsv ``id`` values -> ScanNet200 training index (int16, -1 if not one of the 200)."""
    return _map_ids(raw_id, _TABLE200)


def derive_labels(seg_indices: np.ndarray, seg_groups: list[dict[str, Any]],
                  label_map: dict[str, tuple[int, int]], scene_id: str = '',
                  agg_path: str | os.PathLike[str] = ''
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex labels from segments, aggregation groups and the tsv label map.

    A vertex takes the group containing its segment (when a segment is listed in several
    groups, the later group wins, as in the reference readers); vertices in no group are -1.

    Args:
        seg_indices: (N,) int segment id per vertex.
        seg_groups: from :func:`read_aggregation`.
        label_map: from :func:`read_label_map`.

    Returns:
        segment20 (N,) int16, segment200 (N,) int16, instance (N,) int16 (group ``id``).

    Raises:
        SceneError: a group's label is not a ``raw_category`` of the tsv.
    """
    n = len(seg_indices)
    seg20 = np.full(n, IGNORE_INDEX, np.int16)
    seg200 = np.full(n, IGNORE_INDEX, np.int16)
    inst = np.full(n, IGNORE_INDEX, np.int16)
    if not seg_groups or n == 0:
        return seg20, seg200, inst
    g20 = np.empty(len(seg_groups), np.int16)
    g200 = np.empty(len(seg_groups), np.int16)
    gid = np.empty(len(seg_groups), np.int16)
    seg_list, grp_list = [], []
    for k, g in enumerate(seg_groups):
        if g['label'] not in label_map:
            raise SceneError(scene_id, agg_path,
                             f'label {g["label"]!r} (segGroup id {g["id"]}) is not a raw_category '
                             f'in {TSV_NAME}')
        raw_id, nyu40 = label_map[g['label']]
        g20[k] = nyu40_to_scannet20(np.array([nyu40]))[0]
        g200[k] = scannet200_index(np.array([raw_id]))[0]
        gid[k] = g['id']
        seg_list.append(np.asarray(g['segments'], np.int64))
        grp_list.append(np.full(len(g['segments']), k, np.int64))
    segs = np.concatenate(seg_list)
    grps = np.concatenate(grp_list)
    if segs.size == 0:
        return seg20, seg200, inst
    # last occurrence of each segment id wins: sort by (segment, group order) and keep the last
    order = np.lexsort((np.arange(len(segs)), segs))
    segs, grps = segs[order], grps[order]
    last = np.r_[segs[1:] != segs[:-1], True]
    useg, ugrp = segs[last], grps[last]
    pos = np.clip(np.searchsorted(useg, seg_indices), 0, len(useg) - 1)
    hit = useg[pos] == seg_indices
    vg = ugrp[pos[hit]]
    seg20[hit] = g20[vg]
    seg200[hit] = g200[vg]
    inst[hit] = gid[vg]
    return seg20, seg200, inst


# ------------------------------------------------------------------------------------------------
# One scene


def process_scene(scene_id: str, scene_dir: str | os.PathLike[str], split: str,
                  label_map: dict[str, tuple[int, int]]
                  ) -> tuple[dict[str, np.ndarray], SceneResult]:
    """Read and convert one scene in memory (no output written).

    Returns:
        arrays keyed by :data:`ARRAY_FILES`, and the :class:`SceneResult`.

    Raises:
        SceneError: naming the offending file.
    """
    paths = scene_paths(scene_dir, scene_id)
    warnings: list[str] = []
    labelled = split != 'test'
    # check presence of everything first, so a missing file is reported before slow reads
    required = ['mesh', 'meta'] + (['segs', 'aggregation', 'labels'] if labelled else [])
    for role in required:
        _require(scene_id, paths[role])

    coord, color, faces = read_mesh(paths['mesh'], scene_id)
    n = len(coord)
    align = read_axis_alignment(paths['meta'], scene_id)
    if align is None:
        align = np.eye(4)
        if labelled:
            warnings.append(f'no axisAlignment in {paths["meta"]}; using identity')
    normal = compute_vertex_normals(coord, faces)

    mismatch: float | None = None
    if labelled:
        seg_indices = read_segs(paths['segs'], scene_id)
        if len(seg_indices) != n:
            raise SceneError(scene_id, paths['segs'],
                             f'vertex count mismatch: segIndices has {len(seg_indices)} entries, '
                             f'{paths["mesh"].name} has {n} vertices')
        groups = read_aggregation(paths['aggregation'], scene_id)
        seg20, seg200, inst = derive_labels(seg_indices, groups, label_map, scene_id,
                                            paths['aggregation'])
        ply_labels = read_vertex_labels(paths['labels'], scene_id)
        if len(ply_labels) != n:
            raise SceneError(scene_id, paths['labels'],
                             f'vertex count mismatch: labels.ply has {len(ply_labels)} vertices, '
                             f'{paths["mesh"].name} has {n}')
        mismatch = float(np.mean(nyu40_to_scannet20(ply_labels) != seg20)) if n else 0.0
        if mismatch > MISMATCH_WARN:
            warnings.append(f'labels.ply disagrees with segs+aggregation on {mismatch:.1%} '
                            'of vertices')
    else:
        seg20 = np.full(n, IGNORE_INDEX, np.int16)
        seg200 = np.full(n, IGNORE_INDEX, np.int16)
        inst = np.full(n, IGNORE_INDEX, np.int16)

    arrays = {
        'coord': coord, 'color': color, 'normal': normal, 'segment20': seg20,
        'segment200': seg200, 'instance': inst, 'axis_align_matrix': align.astype(np.float32),
    }
    result = SceneResult(
        scene_id=scene_id, split=split, points=n, label_mismatch=mismatch, warnings=warnings,
        class_points20=_class_counts(seg20, len(VALID_CLASS_IDS_20)),
        class_points200=_class_counts(seg200, len(VALID_CLASS_IDS_200)))
    return arrays, result


def _class_counts(seg: np.ndarray, k: int) -> list[int]:
    return np.bincount(seg[seg >= 0].astype(np.int64), minlength=k)[:k].tolist()


def _save_array(path: Path, array: np.ndarray) -> None:
    """Write one array inside the (temporary) scene dir; a seam for failure-injection tests."""
    np.save(path, array, allow_pickle=False)


def write_scene(out_dir: str | os.PathLike[str], arrays: dict[str, np.ndarray],
                overwrite: bool = False) -> None:
    """Write ``arrays`` as ``<name>.npy`` into ``out_dir`` atomically (temp dir + rename)."""
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for name in ARRAY_FILES:
            _save_array(tmp / f'{name}.npy', arrays[name])


def convert_scene(scene_id: str, scene_dir: str | os.PathLike[str], split: str,
                  out_scenes: str | os.PathLike[str], label_map: dict[str, tuple[int, int]],
                  overwrite: bool = False) -> SceneResult:
    """Convert one scene into ``out_scenes/<scene_id>/``; raises :class:`SceneError`."""
    arrays, result = process_scene(scene_id, scene_dir, split, label_map)
    final = Path(out_scenes) / scene_id
    try:
        write_scene(final, arrays, overwrite=overwrite)
    except OSError as e:
        raise SceneError(scene_id, final, f'cannot write output ({e})')
    return result


# ------------------------------------------------------------------------------------------------
# Whole dataset

_WORKER_LABEL_MAP: dict[str, tuple[int, int]] = {}


def _init_worker(label_map: dict[str, tuple[int, int]]) -> None:
    global _WORKER_LABEL_MAP
    _WORKER_LABEL_MAP = label_map


def _run_task(task: tuple[str, str, str, str, bool]
              ) -> tuple[str, SceneResult | tuple[str, str, str]]:
    scene_id, scene_dir, split, out_scenes, overwrite = task
    try:
        return 'ok', convert_scene(scene_id, scene_dir, split, out_scenes, _WORKER_LABEL_MAP,
                                   overwrite)
    except SceneError as e:
        return 'failed', (e.scene_id, e.path, e.reason)
    except Exception as e:  # a bug or resource error must not take the other scenes down
        return 'failed', (scene_id, scene_dir, f'unexpected {type(e).__name__}: {e}')


def _locate(root: Path, scene_id: str, split: str) -> Path | None:
    order = ('scans_test', 'scans') if split == 'test' else ('scans', 'scans_test')
    for sub in order:
        d = root / sub / scene_id
        if d.is_dir():
            return d
    return None


def _mp_context() -> mp.context.BaseContext:
    # fork is fastest; avoid it when other Python threads exist (fork-with-threads hazards)
    if 'fork' in mp.get_all_start_methods() and threading.active_count() == 1:
        return mp.get_context('fork')
    return mp.get_context('spawn')


def _scene_stats(scene_dir: Path) -> SceneResult | None:
    """Recover counts of a scene converted by an earlier run (None if unreadable)."""
    try:
        seg20 = np.load(scene_dir / 'segment20.npy', mmap_mode='r')
        seg200 = np.load(scene_dir / 'segment200.npy', mmap_mode='r')
    except (OSError, ValueError):
        return None
    return SceneResult(scene_id=scene_dir.name, split='', points=int(seg20.shape[0]),
                       class_points20=_class_counts(np.asarray(seg20), len(VALID_CLASS_IDS_20)),
                       class_points200=_class_counts(np.asarray(seg200),
                                                     len(VALID_CLASS_IDS_200)))


def _log(msg: str, bar: Any = None) -> None:
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr, flush=True)


def convert(root: str | os.PathLike[str], out: str | os.PathLike[str], workers: int = 1,
            overwrite: bool = False, split_dir: str | os.PathLike[str] | None = None,
            splits: Sequence[str] = SPLITS, label_map_path: str | os.PathLike[str] | None = None,
            progress: bool = True, verbose: bool = True) -> ConvertReport:
    """Convert every scene listed in the requested split files.

    Args:
        root: ScanNet v2 download root (holding ``scans/``, ``scans_test/``, the tsv).
        out: output root (created).
        workers: processes; 1 runs in this process.
        overwrite: reconvert scenes whose output directory already exists.
        split_dir: extra directory to look for ``scannetv2_<split>.txt`` first.
        splits: which splits to convert.
        label_map_path: tsv path (default ``ROOT/scannetv2-labels.combined.tsv``).
        progress: show a tqdm progress bar (stderr).
        verbose: print failures, warnings and the summary line.

    Returns:
        the :class:`ConvertReport`; failures are also listed in ``OUT/failed.txt``.

    Raises:
        InputError: missing root, split files or label map (nothing converted).
    """
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise InputError(f'unknown split(s) {unknown}; choose from {list(SPLITS)}')
    if not root.is_dir():
        raise InputError(f'ScanNet root {root} is not a directory')
    split_ids = read_split_files(root, split_dir, splits)
    tsv = Path(label_map_path) if label_map_path is not None else root / TSV_NAME
    if not tsv.is_file():
        raise InputError(f'label map {tsv} not found (it ships with the ScanNet download as '
                         f'{TSV_NAME})')
    label_map = read_label_map(tsv)
    if workers < 1:
        raise InputError(f'workers must be >= 1, got {workers}')

    out_scenes = out / 'scenes'
    out_scenes.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out_scenes)
    remove_stale_tmp(out)

    report = ConvertReport()
    results: dict[str, SceneResult] = {}
    tasks: list[tuple[str, str, str, str, bool]] = []
    done_before: list[str] = []
    for split in splits:
        for scene_id in split_ids[split]:
            if not overwrite and (out_scenes / scene_id).is_dir():
                done_before.append(scene_id)
                continue
            scene_dir = _locate(root, scene_id, split)
            if scene_dir is None:
                sub = 'scans_test' if split == 'test' else 'scans'
                report.failed.append((scene_id, str(root / sub / scene_id),
                                      'missing scene directory'))
                continue
            tasks.append((scene_id, str(scene_dir), split, str(out_scenes), overwrite))
    report.skipped = len(done_before)

    bar = None
    if progress and tasks:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), desc='scannet', unit='scene', file=sys.stderr,
                   dynamic_ncols=True)

    def handle(status: str, payload: Any) -> None:
        if status == 'ok':
            res: SceneResult = payload
            results[res.scene_id] = res
            report.converted += 1
            report.points += res.points
            for w in res.warnings:
                report.warnings.append(f'{res.scene_id}: {w}')
                if verbose:
                    _log(f'warning: {res.scene_id}: {w}', bar)
        else:
            report.failed.append(payload)
            if verbose:
                _log('FAILED {}: {}: {}'.format(*payload), bar)
        if bar is not None:
            bar.update(1)

    try:
        if workers == 1 or len(tasks) <= 1:
            _init_worker(label_map)
            for task in tasks:
                handle(*_run_task(task))
        else:
            ctx = _mp_context()
            with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker,
                          initargs=(label_map,)) as pool:
                for status, payload in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    handle(status, payload)
    finally:
        if bar is not None:
            bar.close()

    # failure order: split-file order
    order = {s: k for k, s in enumerate(i for sp in splits for i in split_ids[sp])}
    report.failed.sort(key=lambda f: order.get(f[0], len(order)))
    _write_index(out, splits, split_ids, results, done_before, report, label_map_path=tsv)
    report.seconds = time.perf_counter() - t0
    if verbose:
        print(report.summary(), flush=True)
    return report


def _write_index(out: Path, splits: Sequence[str], split_ids: dict[str, list[str]],
                 results: dict[str, SceneResult], done_before: Iterable[str],
                 report: ConvertReport, label_map_path: Path) -> None:
    """Write ``splits/*.txt``, ``meta.json`` and ``failed.txt`` (removed when nothing failed)."""
    out_scenes = out / 'scenes'
    (out / 'splits').mkdir(parents=True, exist_ok=True)
    old_meta: dict[str, Any] = {}
    try:
        old_meta = json.loads((out / 'meta.json').read_text()).get('scenes', {})
    except (OSError, ValueError, AttributeError):
        old_meta = {}
    for scene_id in done_before:
        if scene_id not in results:
            res = _scene_stats(out_scenes / scene_id)
            if res is not None:
                prev = old_meta.get(scene_id, {}) if isinstance(old_meta, dict) else {}
                res.label_mismatch = prev.get('label_mismatch')
                res.warnings = list(prev.get('warnings', []))
                results[scene_id] = res

    scenes_meta: dict[str, Any] = {}
    split_meta: dict[str, Any] = {}
    for split in splits:
        ok = [i for i in split_ids[split] if i in results and (out_scenes / i).is_dir()]
        atomic_write_text(out / 'splits' / f'{split}.txt', ''.join(f'{i}\n' for i in ok))
        c20 = np.zeros(len(VALID_CLASS_IDS_20), np.int64)
        c200 = np.zeros(len(VALID_CLASS_IDS_200), np.int64)
        for i in ok:
            r = results[i]
            c20 += np.asarray(r.class_points20 or 0, np.int64)
            c200 += np.asarray(r.class_points200 or 0, np.int64)
            scenes_meta[i] = {'split': split, 'points': r.points,
                              'label_mismatch': r.label_mismatch, 'warnings': r.warnings}
        split_meta[split] = {
            'scenes': len(ok), 'listed': len(split_ids[split]),
            'points': int(sum(results[i].points for i in ok)),
            'class_points20': c20.tolist(), 'class_points200': c200.tolist()}
    meta = {
        'dataset': 'scannet',
        'converter': 'geo3d.converters.scannet',
        'converter_version': CONVERTER_VERSION,
        'label_map': str(label_map_path),
        'ignore_index': IGNORE_INDEX,
        'coord_frame': 'raw scan frame (not axis-aligned); aligned = axis_align_matrix @ '
                       '[x, y, z, 1]; identity for test scenes',
        'files': {
            'coord': 'float32 (N, 3)', 'color': 'uint8 (N, 3)', 'normal': 'float32 (N, 3)',
            'segment20': 'int16 (N,)', 'segment200': 'int16 (N,)', 'instance': 'int16 (N,)',
            'axis_align_matrix': 'float32 (4, 4)'},
        'instance': '0-based aggregation segGroup id; -1 = vertex in no group (and test scenes)',
        'label_sets': {
            'scannet20': {'field': 'segment20', 'source': 'nyu40id',
                          'class_ids': list(VALID_CLASS_IDS_20),
                          'class_names': list(CLASS_LABELS_20)},
            'scannet200': {'field': 'segment200', 'source': 'tsv id',
                           'class_ids': list(VALID_CLASS_IDS_200),
                           'class_names': list(CLASS_LABELS_200)},
        },
        'splits': split_meta,
        'num_scenes': len(scenes_meta),
        'num_points': int(sum(s['points'] for s in scenes_meta.values())),
        'scenes': dict(sorted(scenes_meta.items())),
    }
    atomic_write_json(out / 'meta.json', meta)
    failed_txt = out / 'failed.txt'
    if report.failed:
        atomic_write_text(failed_txt, ''.join(f'{s}: {f}: {r}\n' for s, f, r in report.failed))
    elif failed_txt.exists():
        failed_txt.unlink()


# ------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='data_converters/scannet.py',
        description='Convert raw ScanNet v2 scans into per-scene .npy arrays.')
    p.add_argument('--root', required=True, help='ScanNet v2 root (scans/, scans_test/, tsv)')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--overwrite', action='store_true', help='reconvert finished scenes')
    p.add_argument('--split-dir', default=None,
                   help='directory holding scannetv2_{train,val,test}.txt')
    p.add_argument('--splits', default=','.join(SPLITS),
                   help='comma-separated splits to convert (default train,val,test)')
    p.add_argument('--label-map', default=None, help=f'path of {TSV_NAME} (default ROOT/...)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all converted, 1 some scene failed, 2 bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    splits = [s.strip() for s in args.splits.split(',') if s.strip()]
    try:
        report = convert(args.root, args.out, workers=args.workers, overwrite=args.overwrite,
                         split_dir=args.split_dir, splits=splits, label_map_path=args.label_map,
                         progress=not args.no_progress)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
