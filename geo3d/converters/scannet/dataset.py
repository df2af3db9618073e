"""Conversion of a whole ScanNet download: the (parallel) driver over the split lists, and the
index it writes (``splits/*.txt``, ``meta.json``, ``failed.txt``)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from geo3d.datasets.scannet_constants import (CLASS_LABELS_20, CLASS_LABELS_200, IGNORE_INDEX,
                                              VALID_CLASS_IDS_20, VALID_CLASS_IDS_200)
from geo3d.utils.io import atomic_write_json, atomic_write_text, remove_stale_tmp

from ..parallel import log_line, run_parallel

from .common import (CONVERTER_VERSION, SPLITS, TSV_NAME, ConvertReport, InputError, SceneError,
                     SceneResult)
from .frames import FRAMES_DIR, FrameOptions
from .labels import _class_counts
from .readers import read_label_map, read_split_files
from .scene import convert_scene, convert_scene_frames, frames_done

_WORKER_LABEL_MAP: dict[str, tuple[int, int]] = {}


def _init_worker(label_map: dict[str, tuple[int, int]]) -> None:
    global _WORKER_LABEL_MAP
    _WORKER_LABEL_MAP = label_map


_Task = tuple[str, str, str, str, bool, 'FrameOptions | None', bool]


def _run_task(task: _Task) -> tuple[str, SceneResult | tuple[str, str, str]]:
    scene_id, scene_dir, split, out_scenes, overwrite, frames, frames_only = task
    try:
        if frames_only:  # points done before: add frames/ (status 'frames')
            assert frames is not None
            return 'frames', convert_scene_frames(scene_id, scene_dir, out_scenes, frames,
                                                  overwrite=True)
        return 'ok', convert_scene(scene_id, scene_dir, split, out_scenes, _WORKER_LABEL_MAP,
                                   overwrite, frames=frames)
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
                                                     len(VALID_CLASS_IDS_200)),
                       frames=_frames_count(scene_dir))


def _frames_count(scene_dir: Path) -> int | None:
    """Frames in ``scene_dir/frames/`` (None when there is no complete frames folder)."""
    try:
        return int(json.loads((scene_dir / FRAMES_DIR / 'meta.json').read_text())['num_frames'])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def convert(root: str | os.PathLike[str], out: str | os.PathLike[str], workers: int = 1,
            overwrite: bool = False, split_dir: str | os.PathLike[str] | None = None,
            splits: Sequence[str] = SPLITS, label_map_path: str | os.PathLike[str] | None = None,
            progress: bool = True, verbose: bool = True,
            frames: FrameOptions | None = None) -> ConvertReport:
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
        frames: also write each scene's RGB-D frames (``scenes/<id>/frames/``, see
            :mod:`.frames`) from ``<id>.sens`` or an exported folder. A scene converted before
            without frames gets only its frames added; a scene whose frames fail is reported
            as failed and left out of the split lists.

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

    report = ConvertReport(frames=None if frames is None else 0)
    results: dict[str, SceneResult] = {}
    tasks: list[_Task] = []
    done_before: list[str] = []
    for split in splits:
        for scene_id in split_ids[split]:
            frames_only = False
            if not overwrite and (out_scenes / scene_id).is_dir():
                done_before.append(scene_id)
                if frames is None or frames_done(out_scenes / scene_id):
                    continue
                frames_only = True
            scene_dir = _locate(root, scene_id, split)
            if scene_dir is None:
                sub = 'scans_test' if split == 'test' else 'scans'
                report.failed.append((scene_id, str(root / sub / scene_id),
                                      'missing scene directory'))
                continue
            tasks.append((scene_id, str(scene_dir), split, str(out_scenes), overwrite, frames,
                          frames_only))

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status in ('ok', 'frames'):
            res: SceneResult = payload
            if status == 'ok':
                results[res.scene_id] = res
                report.converted += 1
                report.points += res.points
            if res.frames is not None and report.frames is not None:
                report.frames += res.frames
            for w in res.warnings:
                report.warnings.append(f'{res.scene_id}: {w}')
                if verbose:
                    log_line(f'warning: {res.scene_id}: {w}', bar)
        else:
            report.failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_run_task, tasks, workers, 'scannet', 'scene', progress, handle,
                 initializer=_init_worker, initargs=(label_map,))

    # a scene whose frames failed is not done: out of done_before, hence out of the splits
    failed_ids = {f[0] for f in report.failed}
    done_before = [i for i in done_before if i not in failed_ids]
    report.skipped = len(done_before)
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
            if r.frames is not None:
                scenes_meta[i]['frames'] = r.frames
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
