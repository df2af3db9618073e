"""LIDAR_TOP key frames as point clouds in the ScanNet-like per-frame folder layout, with
optional multi-sweep aggregation and nuScenes-lidarseg labels.

Aggregation follows ``LidarPointCloud.from_file_multisweep`` of nuscenes-devkit: ``nsweeps``
scans counted from the key frame backwards along ``prev`` (stopping at the scene start), each
moved into the KEY FRAME's LiDAR frame with ``ref_from_car @ car_from_global @ global_from_car
@ car_from_current`` (the devkit's ``transform_matrix`` of the calibrated_sensor and ego_pose
records), with a per-point time lag ``t_key - t_sweep`` (s, >= 0). One difference, as in
mmdetection3d's ``LoadPointsFromMultiSweeps``: the 1 m ``remove_close`` box is applied to the
PAST sweeps only, so the key frame keeps every point and its lidarseg labels stay aligned (the
ego vehicle's own returns are labelled ``vehicle.ego`` -> ignore).

Labels: lidarseg's uint8 fine class per key-frame point is mapped with the devkit's
``LidarsegClassMapper`` (the 16 classes of the nuScenes-lidarseg benchmark) to 0..15, its
``ignore`` class to -1; points of past sweeps are -1 (lidarseg labels key frames only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from geo3d.utils.io import atomic_dir, atomic_save_npy, atomic_write_json

from .common import CONVERTER_VERSION, LIDAR, FrameError
from .depth import load_lidar_points
from .tables import record_pose

IGNORE_INDEX = -1
FRAME_FILES: tuple[str, ...] = ('coord.npy', 'intensity.npy', 'time.npy', 'segment.npy',
                                'meta.json')


def lidarseg_classes_and_lut(nusc: Any) -> tuple[list[str], np.ndarray] | None:
    """(16 benchmark class names in label order, (256,) int16 lookup fine index -> geo3d label
    (coarse index - 1, ignore -1)) from the devkit's ``LidarsegClassMapper``; None when the
    version has no lidarseg."""
    if not hasattr(nusc, 'lidarseg'):
        return None
    from nuscenes.eval.lidarseg.utils import LidarsegClassMapper
    mapper = LidarsegClassMapper(nusc)
    coarse = mapper.coarse_name_2_coarse_idx_mapping
    ignore = mapper.ignore_class['index']
    order = sorted((i, n) for n, i in coarse.items() if i != ignore)
    label_of = {i: label for label, (i, _) in enumerate(order)}
    lut = np.full(256, IGNORE_INDEX, dtype=np.int16)
    for fine, c in mapper.fine_idx_2_coarse_idx_mapping.items():
        lut[int(fine)] = label_of.get(c, IGNORE_INDEX)
    return [n for _, n in order], lut


def frame_name(scene: str, index: int) -> str:
    """Folder name of key frame ``index`` (0-based) of ``scene``: ``scene-0061_000``."""
    return f'{scene}_{index:03d}'


def plan_lidar_scene(nusc: Any, scene: dict, nsweeps: int, seg_files: dict[str, str]
                     ) -> list[dict[str, Any]]:
    """Per key frame of ``scene``: ``name``, ``sample_token``, ``token``, ``timestamp``,
    ``file``, ``lidarseg`` (file or None) and ``sweeps`` (the ``nsweeps - 1`` previous scans:
    ``token``, ``file``, ``ref_from_current`` 4x4, ``time_lag`` s)."""
    frames = []
    tok = scene['first_sample_token']
    k = 0
    while tok:
        sample = nusc.get('sample', tok)
        sd_tok = sample['data'].get(LIDAR)
        if sd_tok is None:
            raise FrameError(scene['name'], f'sample {tok}', f'no {LIDAR} key frame')
        ref = nusc.get('sample_data', sd_tok)
        g_e, e_l = record_pose(nusc, ref)
        ref_from_global = np.linalg.inv(g_e @ e_l)
        sweeps = []
        cur = ref
        for _ in range(nsweeps - 1):
            if not cur['prev']:
                break
            cur = nusc.get('sample_data', cur['prev'])
            cg_e, ce_l = record_pose(nusc, cur)
            sweeps.append({'token': cur['token'], 'file': cur['filename'],
                           'ref_from_current': (ref_from_global @ cg_e @ ce_l).tolist(),
                           'time_lag': 1e-6 * ref['timestamp'] - 1e-6 * cur['timestamp']})
        frames.append({'name': frame_name(scene['name'], k), 'sample_token': tok,
                       'token': sd_tok, 'timestamp': int(ref['timestamp']),
                       'file': ref['filename'], 'lidarseg': seg_files.get(sd_tok),
                       'sweeps': sweeps})
        tok = sample['next']
        k += 1
    return frames


def aggregate_sweeps(root: Path, scene: str, frame: dict[str, Any], min_dist: float
                     ) -> tuple[np.ndarray, np.ndarray, int, list[tuple[str, str, str]]]:
    """(4, N) points (the key frame's N_key points first, then the past sweeps, all in the key
    frame's LiDAR frame), (N,) time lags, N_key, and the sweeps that could not be read
    (``(scene, file, reason)``: reported and left out)."""
    from nuscenes.utils.data_classes import LidarPointCloud
    key = load_lidar_points(root / frame['file'], scene, 'LIDAR_TOP key frame scan')
    points, times, failed = [key], [np.zeros(key.shape[1], np.float32)], []
    for sw in frame['sweeps']:
        try:
            pts = load_lidar_points(root / sw['file'], scene, 'LIDAR_TOP sweep')
        except FrameError as e:
            failed.append((e.scene, e.path, f'{e.reason}: left out of key frame {frame["name"]}'))
            continue
        pc = LidarPointCloud(pts)
        pc.remove_close(min_dist)
        pc.transform(np.asarray(sw['ref_from_current'], np.float64))
        points.append(pc.points)
        times.append(np.full(pc.nbr_points(), sw['time_lag'], np.float32))
    return np.concatenate(points, 1), np.concatenate(times), key.shape[1], failed


def _frame_valid(folder: Path, options: dict[str, Any]) -> dict | None:
    try:
        meta = json.loads((folder / 'meta.json').read_text())
    except (OSError, ValueError):
        return None
    if meta.get('converter_version') != CONVERTER_VERSION or \
            any(meta.get(k) != v for k, v in options.items()):
        return None
    if not all((folder / f).is_file() for f in FRAME_FILES):
        return None
    return meta


def process_lidar_scene(task: tuple[str, str, str, list, list | None, int, float, bool]
                        ) -> dict[str, Any]:
    """Worker: write the frame folders of one scene.

    ``task`` = (root, out_lidar, scene, planned frames, lut (256,) or None, nsweeps, min_dist,
    overwrite). Returns ``{'scene', 'frames': [names written or kept], 'written', 'skipped',
    'failed', 'points'}``.
    """
    from nuscenes.utils.data_io import load_bin_file
    root_s, out_s, scene, frames, lut_list, nsweeps, min_dist, overwrite = task
    root, out = Path(root_s), Path(out_s)
    lut = None if lut_list is None else np.asarray(lut_list, np.int16)
    result: dict[str, Any] = {'scene': scene, 'frames': [], 'written': 0, 'skipped': 0,
                              'failed': [], 'points': 0}
    options = {'nsweeps': nsweeps, 'min_dist': min_dist}
    for fr in frames:
        folder = out / 'scenes' / fr['name']
        # a frame written before the lidarseg labels were unpacked is redone once they are there
        want = dict(options, labelled=fr['lidarseg'] is not None and lut is not None)
        meta = None if overwrite else _frame_valid(folder, want)
        if meta is not None:
            result['failed'].extend(tuple(f) for f in meta.get('missing_sweeps', []))
            result['frames'].append(fr['name'])
            result['skipped'] += 1
            result['points'] += int(meta.get('num_points', 0))
            continue
        try:
            points, times, n_key, missing = aggregate_sweeps(root, scene, fr, min_dist)
            segment = np.full(points.shape[1], IGNORE_INDEX, np.int16)
            labelled = want['labelled']
            if labelled:
                seg_path = root / fr['lidarseg']
                if not seg_path.is_file():
                    raise FrameError(scene, seg_path, 'missing lidarseg label file')
                try:
                    fine = load_bin_file(str(seg_path), 'lidarseg')
                except (AssertionError, OSError, ValueError) as e:
                    raise FrameError(scene, seg_path, f'unreadable lidarseg labels: {e}') from None
                if fine.shape[0] != n_key:
                    raise FrameError(scene, seg_path, f'{fine.shape[0]} labels for {n_key} points '
                                                      f'of {root / fr["file"]}')
                segment[:n_key] = lut[fine]
        except FrameError as e:
            result['failed'].append(e.as_tuple())
            continue
        result['failed'].extend(missing)
        meta = {'converter_version': CONVERTER_VERSION, **options, 'scene': scene,
                'sample_token': fr['sample_token'], 'lidar_token': fr['token'],
                'timestamp': fr['timestamp'], 'num_points': int(points.shape[1]),
                'sweeps_used': 1 + len(fr['sweeps']) - len(missing), 'labelled': labelled,
                'frame': 'LIDAR_TOP of the key frame (x right, y forward, z up)',
                'missing_sweeps': [list(m) for m in missing]}
        with atomic_dir(folder, overwrite=True) as tmp:
            atomic_save_npy(tmp / 'coord.npy', points[:3].T.astype(np.float32), fsync=False)
            atomic_save_npy(tmp / 'intensity.npy', points[3].astype(np.float32), fsync=False)
            atomic_save_npy(tmp / 'time.npy', times.astype(np.float32), fsync=False)
            atomic_save_npy(tmp / 'segment.npy', segment, fsync=False)
            atomic_write_json(tmp / 'meta.json', meta, fsync=False)
        result['frames'].append(fr['name'])
        result['written'] += 1
        result['points'] += int(points.shape[1])
    return result
