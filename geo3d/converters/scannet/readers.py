"""Readers of the raw ScanNet v2 inputs: label tsv, split lists and the per-scene PLY / JSON /
txt files. Per-scene readers raise :class:`SceneError` naming the offending file."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from plyfile import PlyData, PlyElementParseError

from .common import SPLIT_SOURCE, SPLITS, InputError, SceneError

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
