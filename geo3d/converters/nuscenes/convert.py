"""The nuScenes conversion driver: load the tables with the devkit, split scenes, run the depth
and LiDAR tasks scene by scene in worker processes, write the split files and the summary."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from geo3d.utils.io import (atomic_write_json, atomic_write_text, remove_stale_tmp,
                            write_text_if_changed)

from ..parallel import log_line, run_parallel

from .common import (CAMERA, CONDITIONS, CONVERTER_VERSION, TASKS, ConvertReport, FrameError,
                     InputError, TaskReport)
from .depth import process_depth_scene, scan_camera_scene, select_frames
from .lidar import lidarseg_classes_and_lut, plan_lidar_scene, process_lidar_scene
from .tables import assign_scenes, load_nuscenes

SUBSET_ORDER: tuple[str, ...] = ('train', 'val', 'test')
EVAL_SUBSETS: tuple[str, ...] = ('val', 'test')


def info_name(subset: str, condition: str | None = None) -> str:
    """``<subset>_info.json`` or ``<condition>_<subset>_info.json`` (e.g. ``night_val``)."""
    return f'{condition}_{subset}_info.json' if condition else f'{subset}_info.json'


def _write_failed(folder: Path, failed: Sequence[tuple[str, str, str]]) -> None:
    path = folder / 'failed.txt'
    if failed:
        atomic_write_text(path, ''.join(f'{s}: {f}: {r}\n' for s, f, r in failed))
    elif path.exists():
        path.unlink()


def _guard(fn: Any, task: tuple) -> tuple[str, Any]:
    """Run a scene worker; an unexpected error fails that scene only."""
    try:
        return 'ok', fn(task)
    except Exception as e:  # a bug or resource error must not take the other scenes down
        scene = task[2] if isinstance(task[2], str) else task[2].get('scene', '?')
        return 'failed', (scene, str(task[0]), f'unexpected {type(e).__name__}: {e}')


def _depth_task(task: tuple) -> tuple[str, Any]:
    return _guard(process_depth_scene, task)


def _lidar_task(task: tuple) -> tuple[str, Any]:
    return _guard(process_lidar_scene, task)


# ------------------------------------------------------------------------------------------------
# depth

def convert_depth(nusc: Any, root: Path, out: Path, assignment: dict[str, str], source: str,
                  offsets: Sequence[int], min_speed: float, keyframes_only: bool,
                  min_dist: float, overwrite: bool, verify_images: bool, workers: int,
                  progress: bool, verbose: bool) -> TaskReport:
    """The depth task: ``OUT/depth/{scenes,gt,splits}`` (layout in the package docstring)."""
    report = TaskReport('depth')
    for sub in ('', 'scenes', 'splits'):
        (out / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out / sub)
    records: dict[str, dict] = {}
    for scene in nusc.scene:
        name = scene['name']
        if name not in assignment:
            continue
        try:
            rec = scan_camera_scene(nusc, scene, CAMERA)
        except FrameError as e:
            report.failed.append(e.as_tuple())
            continue
        write_text_if_changed(out / 'scenes' / f'{name}.json', json.dumps(rec, indent=1) + '\n')
        records[name] = rec
    report.scenes = len(records)
    results: dict[str, dict] = {}

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status != 'ok':
            report.failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)
            return
        results[payload['scene']] = payload
        report.frames_written += payload['written']
        report.frames_skipped += payload['skipped']
        report.failed.extend(payload['failed'])
        if verbose:
            for f in payload['failed']:
                log_line('FAILED {}: {}: {}'.format(*f), bar)

    tasks = [(str(root), str(out), rec, min_dist, overwrite, verify_images)
             for rec in records.values()]
    run_parallel(_depth_task, tasks, workers, 'nuscenes depth', 'scene', progress, handle)

    subsets: dict[str, list[dict]] = {}
    for name, rec in records.items():
        res = results.get(name)
        if res is None:
            continue
        missing = set(res['missing_images'])
        usable = {f['token'] for f in rec['frames'] if f['token'] not in missing}
        subset = assignment[name]
        frames = select_frames(rec, subset, offsets, usable, res['gt_points'], min_speed,
                               keyframes_only)
        subsets.setdefault(subset, []).extend(frames)
        if subset in EVAL_SUBSETS:
            for cond in CONDITIONS:
                subsets.setdefault(f'{cond}_{subset}', []).extend(
                    f for f in frames if cond in f['tags'])
    header = {'dataset': 'nuscenes', 'converter': 'geo3d.converters.nuscenes',
              'converter_version': CONVERTER_VERSION, 'version': nusc.version,
              'split_source': source, 'raw_root': str(root.resolve()), 'channel': CAMERA,
              'frame_offsets': list(offsets), 'min_speed': min_speed,
              'keyframes_only': keyframes_only, 'gt_min_dist': min_dist,
              'intrinsics': 'normalised [fx/W, fy/H, cx/W, cy/H] of the native image',
              'pose_convention': "neighbours[o]['T'] maps target-camera points into the "
                                 'neighbour camera (T_tgt_to_src), from ego_pose x '
                                 'calibrated_sensor'}
    names = [s for s in SUBSET_ORDER] + [f'{c}_{s}' for s in EVAL_SUBSETS for c in CONDITIONS]
    for key in names:
        subset, cond = (key, None) if key in SUBSET_ORDER else key.split('_')[::-1]
        path = out / 'splits' / info_name(subset, cond)
        frames = subsets.get(key, [])
        if not frames:
            if path.exists():
                path.unlink()
            continue
        report.subsets[key] = len(frames)
        scene_names = sorted({f['scene'] for f in frames})
        info = {**header, 'subset': key, 'condition': cond,
                'scenes': {n: {'token': records[n]['scene_token'],
                               'description': records[n]['description'],
                               'tags': records[n]['tags'], 'location': records[n]['location'],
                               'num_frames': len(records[n]['frames'])} for n in scene_names},
                'frames': frames}
        write_text_if_changed(path, json.dumps(info, indent=1) + '\n')
    _write_failed(out, report.failed)
    return report


# ------------------------------------------------------------------------------------------------
# lidar

def convert_lidar(nusc: Any, root: Path, out: Path, assignment: dict[str, str], source: str,
                  nsweeps: int, min_dist: float, overwrite: bool, workers: int, progress: bool,
                  verbose: bool) -> TaskReport:
    """The LiDAR task: ``OUT/lidar/{scenes,splits,meta.json}`` (layout in the package
    docstring)."""
    report = TaskReport('lidar')
    for sub in ('', 'scenes', 'splits'):
        (out / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out / sub)
    labels = lidarseg_classes_and_lut(nusc)
    seg_files = {r['sample_data_token']: r['filename'] for r in getattr(nusc, 'lidarseg', [])}
    lut = None if labels is None else labels[1].tolist()
    tasks, order = [], []
    for scene in nusc.scene:
        name = scene['name']
        if name not in assignment:
            continue
        try:
            frames = plan_lidar_scene(nusc, scene, nsweeps, seg_files)
        except FrameError as e:
            report.failed.append(e.as_tuple())
            continue
        order.append(name)
        tasks.append((str(root), str(out), name, frames, lut, nsweeps, min_dist, overwrite))
    report.scenes = len(tasks)
    done: dict[str, list[str]] = {}
    points = [0]

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status != 'ok':
            report.failed.append(payload)
            if verbose:
                log_line('FAILED {}: {}: {}'.format(*payload), bar)
            return
        done[payload['scene']] = payload['frames']
        report.frames_written += payload['written']
        report.frames_skipped += payload['skipped']
        report.failed.extend(payload['failed'])
        points[0] += payload['points']
        if verbose:
            for f in payload['failed']:
                log_line('FAILED {}: {}: {}'.format(*f), bar)

    run_parallel(_lidar_task, tasks, workers, 'nuscenes lidar', 'scene', progress, handle)
    for subset in SUBSET_ORDER:
        names = [f for s in order if assignment[s] == subset for f in done.get(s, [])]
        path = out / 'splits' / f'{subset}.txt'
        if names:
            report.subsets[subset] = len(names)
            write_text_if_changed(path, ''.join(n + '\n' for n in names))
        elif path.exists():
            path.unlink()
    atomic_write_json(out / 'meta.json', {
        'dataset': 'nuscenes_lidar', 'converter_version': CONVERTER_VERSION,
        'version': nusc.version, 'split_source': source, 'raw_root': str(root.resolve()),
        'nsweeps': nsweeps, 'min_dist': min_dist,
        'classes': None if labels is None else labels[0], 'ignore_index': -1,
        'label_source': None if labels is None else
        'nuScenes-lidarseg, 16-class benchmark mapping of nuscenes-devkit LidarsegClassMapper',
        'files': {'coord.npy': '(N, 3) float32 x y z in the key frame LIDAR_TOP frame (m)',
                  'intensity.npy': '(N,) float32 LiDAR intensity 0..255',
                  'time.npy': '(N,) float32 time lag to the key frame (s, 0 for its points)',
                  'segment.npy': '(N,) int16 class 0..15, -1 ignore / unlabelled',
                  'meta.json': 'tokens, timestamp, sweeps used'},
        'frames': report.subsets, 'points': points[0]})
    _write_failed(out, report.failed)
    return report


# ------------------------------------------------------------------------------------------------
# driver

def convert(root: str | os.PathLike[str], out: str | os.PathLike[str],
            version: str = 'v1.0-mini', task: str = 'all', workers: int = 1,
            overwrite: bool = False, val_scenes: Sequence[str] | None = None,
            frame_offsets: Sequence[int] = (-1, 1), min_speed: float = 0.0,
            keyframes_only: bool = False, min_dist: float = 1.0, nsweeps: int = 1,
            verify_images: bool = False, progress: bool = True, verbose: bool = True
            ) -> ConvertReport:
    """Convert a nuScenes version for depth (CAM_FRONT sequences + LiDAR ground truth) and/or 3D
    pretraining (LIDAR_TOP point clouds with lidarseg labels).

    Args:
        root: nuScenes data root (``samples/``, ``sweeps/``, ``maps/``, ``<version>/``,
            optionally ``lidarseg/<version>/``).
        out: output root; ``OUT/depth`` and ``OUT/lidar`` (package docstring).
        version: ``'v1.0-mini'``, ``'v1.0-trainval'`` or ``'v1.0-test'``.
        task: ``'depth'``, ``'lidar'`` or ``'all'``.
        workers: processes for the per-scene work; 1 = this process.
        overwrite: rewrite ground truth and frame folders even when valid ones exist.
        val_scenes: explicit split override: these scene names are ``val``, the others
            ``train`` (default: the official ``create_splits_scenes()`` split of ``version``).
        frame_offsets: temporal neighbours (in the CAM_FRONT sample_data chain, key frames and
            sweeps, ~12 Hz) recorded for every depth frame and required of training frames.
        min_speed: training frames need an ego speed of at least this (m/s; md4all: 0.5).
        keyframes_only: training targets are key frames only (default: sweeps too).
        min_dist: ground truth keeps camera depths > min_dist (devkit: 1 m); LiDAR sweeps drop
            points in the |x|, |y| < min_dist box (the devkit's ``remove_close``).
        nsweeps: LiDAR scans per point cloud, the key frame included (devkit semantics; 10 is
            the usual detection setting, 1 = key frame only).
        verify_images: decode every camera image and check its size against the table.
        progress: tqdm bars on stderr. verbose: print failures, warnings and the summary.

    Returns:
        the :class:`ConvertReport`; problems are listed per task in ``OUT/<task>/failed.txt``
        (``scene: file: reason``), and the frames concerned are skipped.

    Raises:
        InputError: bad arguments, missing root / version folder / tables, unknown split scenes.
    """
    t0 = time.perf_counter()
    if task not in TASKS:
        raise InputError(f'task must be one of {TASKS}, got {task!r}')
    if workers < 1:
        raise InputError(f'workers must be >= 1, got {workers}')
    if nsweeps < 1:
        raise InputError(f'nsweeps must be >= 1, got {nsweeps}')
    if min_dist < 0 or min_speed < 0:
        raise InputError(f'min_dist and min_speed must be >= 0, got {min_dist}, {min_speed}')
    offsets = sorted({int(o) for o in frame_offsets if int(o) != 0}, key=lambda o: (abs(o), o))
    root, out = Path(root), Path(out)
    nusc = load_nuscenes(root, version)
    assignment, source, warnings = assign_scenes([s['name'] for s in nusc.scene], version,
                                                 val_scenes)
    report = ConvertReport(version=version, split_source=source, warnings=warnings)
    if verbose:
        for w in warnings:
            log_line(f'warning: {w}')
    out.mkdir(parents=True, exist_ok=True)
    if task in ('depth', 'all'):
        report.tasks['depth'] = convert_depth(
            nusc, root, out / 'depth', assignment, source, offsets, min_speed, keyframes_only,
            min_dist, overwrite, verify_images, workers, progress, verbose)
    if task in ('lidar', 'all'):
        report.tasks['lidar'] = convert_lidar(nusc, root, out / 'lidar', assignment, source,
                                              nsweeps, min_dist, overwrite, workers, progress,
                                              verbose)
    report.seconds = time.perf_counter() - t0
    if verbose:
        print(report.summary(), flush=True)
    return report
