"""Conversion of one ScanNet scene: read, derive labels and normals, write atomically."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from geo3d.datasets.scannet_constants import IGNORE_INDEX, VALID_CLASS_IDS_20, VALID_CLASS_IDS_200
from geo3d.utils.io import atomic_dir, remove_stale_tmp

from .common import ARRAY_FILES, MISMATCH_WARN, SceneError, SceneResult
from .frames import FRAMES_DIR, FrameError, FrameOptions, find_frame_source, write_frames
from .geometry import compute_vertex_normals
from .labels import _class_counts, derive_labels, nyu40_to_scannet20
from .readers import (_require, read_aggregation, read_axis_alignment, read_mesh, read_segs,
                      read_vertex_labels, scene_paths)

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

def _save_array(path: Path, array: np.ndarray) -> None:
    """Write one array inside the (temporary) scene dir; a seam for failure-injection tests.

    :func:`write_scene` looks it up on the package, so tests patch
    ``geo3d.converters.scannet._save_array`` (the name they patched before the package split).
    """
    np.save(path, array, allow_pickle=False)


def write_scene(out_dir: str | os.PathLike[str], arrays: dict[str, np.ndarray],
                overwrite: bool = False, extra: Callable[[Path], None] | None = None) -> None:
    """Write ``arrays`` as ``<name>.npy`` into ``out_dir`` atomically (temp dir + rename).

    ``extra(tmp_dir)``, when given, adds more content (the RGB-D ``frames/``) to the temporary
    directory before the rename, so the scene appears complete or not at all.
    """
    save = getattr(sys.modules[__package__], '_save_array', _save_array)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for name in ARRAY_FILES:
            save(tmp / f'{name}.npy', arrays[name])
        if extra is not None:
            extra(tmp)


def _write_scene_frames(scene_id: str, scene_dir: str | os.PathLike[str],
                        frames: FrameOptions, result: SceneResult, frames_out: Path) -> None:
    """Write the scan's RGB-D frames into ``frames_out`` and record the count in ``result``."""
    try:
        source = find_frame_source(scene_dir, scene_id, frames.frames_dir)
        res = write_frames(source, frames_out, frames)
    except FrameError as e:
        raise SceneError(scene_id, e.path, e.reason) from e
    result.frames = res.frames
    result.warnings.extend(res.warnings)


def convert_scene(scene_id: str, scene_dir: str | os.PathLike[str], split: str,
                  out_scenes: str | os.PathLike[str], label_map: dict[str, tuple[int, int]],
                  overwrite: bool = False, frames: FrameOptions | None = None) -> SceneResult:
    """Convert one scene into ``out_scenes/<scene_id>/``; raises :class:`SceneError`.

    With ``frames``, the scene's RGB-D frames are written into its ``frames/`` folder inside the
    same atomic directory (a frame source problem fails the whole scene).
    """
    arrays, result = process_scene(scene_id, scene_dir, split, label_map)
    final = Path(out_scenes) / scene_id
    extra = None if frames is None else (
        lambda tmp: _write_scene_frames(scene_id, scene_dir, frames, result, tmp / FRAMES_DIR))
    try:
        write_scene(final, arrays, overwrite=overwrite, extra=extra)
    except OSError as e:
        raise SceneError(scene_id, final, f'cannot write output ({e})')
    return result


def frames_done(scene_out: str | os.PathLike[str]) -> bool:
    """Has ``scene_out/frames/`` been written completely (its ``meta.json`` comes last)?"""
    return (Path(scene_out) / FRAMES_DIR / 'meta.json').is_file()


def convert_scene_frames(scene_id: str, scene_dir: str | os.PathLike[str],
                         out_scenes: str | os.PathLike[str], frames: FrameOptions,
                         overwrite: bool = False) -> SceneResult:
    """Add ``frames/`` to an already converted ``out_scenes/<scene_id>/`` (its own atomic
    directory); returns a :class:`SceneResult` with ``points=0`` and ``frames`` set."""
    final = Path(out_scenes) / scene_id
    remove_stale_tmp(final)
    result = SceneResult(scene_id=scene_id, split='', points=0)
    try:
        with atomic_dir(final / FRAMES_DIR, overwrite=overwrite) as tmp:
            _write_scene_frames(scene_id, scene_dir, frames, result, tmp)
    except OSError as e:
        raise SceneError(scene_id, final / FRAMES_DIR, f'cannot write output ({e})')
    return result
