"""CAM_FRONT sequences for self-supervised depth: the per-scene camera chain (read from the
tables in the main process), LiDAR ground truth of key frames (projected in worker processes),
and the split info records.

Ground truth follows ``NuScenesExplorer.map_pointcloud_to_image`` of nuscenes-devkit: LIDAR_TOP
points -> ego at the LiDAR timestamp (lidar calibrated_sensor) -> global (the LiDAR's ego_pose)
-> ego at the CAMERA timestamp (inverse of the camera's ego_pose; this compensates ego motion
between the two captures) -> camera (inverse camera calibrated_sensor); depth = z; kept when
``z > min_dist`` (1 m) and ``1 < u < W - 1``, ``1 < v < H - 1``; projected with the devkit's
``view_points``. The four steps are composed into one matrix with the devkit's
``transform_matrix`` (tests compare the result with ``map_pointcloud_to_image`` itself).
Collisions keep the minimum depth (:func:`~.sparse_depth.rasterize_min_depth`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .common import CAMERA, CONVERTER_VERSION, LIDAR, FrameError, scene_tags
from .sparse_depth import rasterize_min_depth, save_sparse_depth, sparse_depth_meta
from .tables import record_pose, sensor_chain

GT_DIR = 'gt'
IMAGE_MARGIN = 1.0  # devkit: 1 < u < W - 1, 1 < v < H - 1


# ------------------------------------------------------------------------------------------------
# scene scan (main process: needs the NuScenes tables)

def _ego_speeds(times_s: np.ndarray, positions: np.ndarray) -> list[float]:
    """(N,) ego speed in m/s at each frame: central difference of the ego positions (one-sided
    at the chain ends)."""
    n = len(times_s)
    out = []
    for i in range(n):
        a, b = max(i - 1, 0), min(i + 1, n - 1)
        dt = times_s[b] - times_s[a]
        out.append(float(np.linalg.norm(positions[b] - positions[a]) / dt) if dt > 0 else 0.0)
    return out


def scan_camera_scene(nusc: Any, scene: dict, channel: str = CAMERA) -> dict[str, Any]:
    """The scene record written to ``depth/scenes/<scene>.json``.

    ``frames``: every ``channel`` sample_data of the scene (key frames and sweeps) in time order,
    each with ``token``, ``sample_token``, ``timestamp`` (us), ``is_key_frame``, ``image``
    (relative to the root), ``width``, ``height``, ``K`` (3x3 pixel intrinsics of the native
    image), ``global_from_cam`` (4x4, camera -> global at the frame's time), ``ego_speed``
    (m/s); key frames also ``lidar``: ``token``, ``file`` and ``cam_from_lidar`` (4x4, the
    devkit's four-step chain composed).
    """
    chain = sensor_chain(nusc, scene, channel)
    frames = []
    positions, times = [], []
    for sd in chain:
        g_e, e_c = record_pose(nusc, sd)
        cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
        K = np.asarray(cs['camera_intrinsic'], dtype=np.float64)
        if K.shape != (3, 3):
            raise FrameError(scene['name'], f'calibrated_sensor {cs["token"]}',
                             f'camera_intrinsic must be 3x3, got shape {K.shape}')
        rec: dict[str, Any] = {
            'token': sd['token'], 'sample_token': sd['sample_token'],
            'timestamp': int(sd['timestamp']), 'is_key_frame': bool(sd['is_key_frame']),
            'image': sd['filename'], 'width': int(sd['width']), 'height': int(sd['height']),
            'K': K.tolist(), 'global_from_cam': (g_e @ e_c).tolist()}
        if rec['is_key_frame']:
            sample = nusc.get('sample', sd['sample_token'])
            lid_tok = sample['data'].get(LIDAR)
            if lid_tok is not None:
                lid = nusc.get('sample_data', lid_tok)
                lg_e, le_l = record_pose(nusc, lid)
                cam_from_lidar = np.linalg.inv(e_c) @ np.linalg.inv(g_e) @ lg_e @ le_l
                rec['lidar'] = {'token': lid_tok, 'file': lid['filename'],
                                'cam_from_lidar': cam_from_lidar.tolist()}
        frames.append(rec)
        positions.append(g_e[:3, 3])
        times.append(rec['timestamp'] * 1e-6)
    for rec, speed in zip(frames, _ego_speeds(np.array(times), np.array(positions))):
        rec['ego_speed'] = speed
    log = nusc.get('log', scene['log_token'])
    return {'converter_version': CONVERTER_VERSION, 'scene': scene['name'],
            'scene_token': scene['token'], 'description': scene.get('description', ''),
            'tags': scene_tags(scene.get('description', '')),
            'location': log.get('location', ''), 'logfile': log.get('logfile', ''),
            'channel': channel, 'frames': frames}


def relative_pose(global_from_target: Sequence, global_from_source: Sequence) -> np.ndarray:
    """(4, 4) ``T_tgt_to_src`` = inv(global_from_source) @ global_from_target: maps points of the
    target camera frame into the source camera frame (geo3d's / Monodepth2's pose convention)."""
    return np.linalg.inv(np.asarray(global_from_source, np.float64)) @ \
        np.asarray(global_from_target, np.float64)


# ------------------------------------------------------------------------------------------------
# ground truth (worker processes: file IO and the devkit's point-cloud classes only)

def project_lidar_to_depth(points: np.ndarray, cam_from_lidar: np.ndarray, K: np.ndarray,
                           width: int, height: int, min_dist: float = 1.0
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project LiDAR points into a camera as the devkit does (module docstring).

    Args:
        points: (4, N) ``LidarPointCloud.points`` in the LiDAR frame (x, y, z, intensity).
        cam_from_lidar: (4, 4) transform (see :func:`scan_camera_scene`).
        K: (3, 3) pixel intrinsics; width, height: image size.
        min_dist: minimum camera depth (devkit: 1 m).

    Returns:
        ``u``, ``v``, ``depth`` (M,) of the kept points (float64 / float32 as the devkit).
    """
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.geometry_utils import view_points
    pc = LidarPointCloud(np.array(points, dtype=np.float32, copy=True))
    pc.transform(np.asarray(cam_from_lidar, dtype=np.float64))
    depths = pc.points[2, :]
    uv = view_points(pc.points[:3, :], np.asarray(K, dtype=np.float64), normalize=True)
    mask = (depths > min_dist) & (uv[0] > IMAGE_MARGIN) & (uv[0] < width - IMAGE_MARGIN) & \
        (uv[1] > IMAGE_MARGIN) & (uv[1] < height - IMAGE_MARGIN)
    return uv[0, mask], uv[1, mask], depths[mask]


def gt_relpath(scene: str, cam_token: str) -> str:
    """``gt/<scene>/<camera sample_data token>.npz`` (relative to ``OUT/depth``)."""
    return f'{GT_DIR}/{scene}/{cam_token}.npz'


def load_lidar_points(path: Path, scene: str, what: str) -> np.ndarray:
    """(4, N) points of a ``.pcd.bin`` with the devkit's ``LidarPointCloud.from_file``; a missing
    or malformed file raises :class:`FrameError` naming it."""
    from nuscenes.utils.data_classes import LidarPointCloud
    if not path.is_file():
        raise FrameError(scene, path, f'missing {what}')
    size = path.stat().st_size
    if size == 0 or size % (5 * 4):
        raise FrameError(scene, path, f'corrupt {what}: {size} bytes is not a whole number of '
                                      '5-float32 points (x y z intensity ring)')
    try:
        return LidarPointCloud.from_file(str(path)).points
    except (OSError, ValueError) as e:
        raise FrameError(scene, path, f'unreadable {what}: {e}') from None


def _gt_valid(path: Path, min_dist: float, shape: tuple[int, int]) -> dict | None:
    meta = sparse_depth_meta(path)
    if meta is None or meta.get('converter_version') != CONVERTER_VERSION or \
            meta.get('min_dist') != min_dist or tuple(meta['shape']) != shape:
        return None
    return meta


def process_depth_scene(task: tuple[str, str, dict, float, bool, bool]) -> dict[str, Any]:
    """Worker: check the images of one scene and write the ground truth of its key frames.

    ``task`` = (root, out_depth, scene record, min_dist, overwrite, verify_images).
    Returns ``{'scene', 'missing_images': [tokens], 'gt_points': {token: M}, 'written',
    'skipped', 'failed': [(scene, file, reason)]}``.
    """
    root_s, out_s, rec, min_dist, overwrite, verify = task
    root, out = Path(root_s), Path(out_s)
    scene = rec['scene']
    result: dict[str, Any] = {'scene': scene, 'missing_images': [], 'gt_points': {},
                              'written': 0, 'skipped': 0, 'failed': []}
    for fr in rec['frames']:
        img = root / fr['image']
        try:
            _check_image(img, fr, scene, verify)
        except FrameError as e:
            result['missing_images'].append(fr['token'])
            result['failed'].append(e.as_tuple())
            continue
        lidar = fr.get('lidar')
        if lidar is None:
            continue
        shape = (fr['height'], fr['width'])
        path = out / gt_relpath(scene, fr['token'])
        meta = None if overwrite else _gt_valid(path, min_dist, shape)
        if meta is not None:
            result['gt_points'][fr['token']] = meta['num_points']
            result['skipped'] += 1
            continue
        try:
            pts = load_lidar_points(root / lidar['file'], scene, 'LIDAR_TOP scan (ground truth)')
            u, v, d = project_lidar_to_depth(pts, np.array(lidar['cam_from_lidar']),
                                             np.array(fr['K']), fr['width'], fr['height'],
                                             min_dist)
        except FrameError as e:
            result['failed'].append(e.as_tuple())
            continue
        rows, cols, depth = rasterize_min_depth(u, v, d, *shape)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_sparse_depth(path, rows, cols, depth, shape, {
            'converter_version': CONVERTER_VERSION, 'min_dist': min_dist,
            'lidar_token': lidar['token'], 'camera_token': fr['token'],
            'convention': 'LIDAR_TOP key frame projected into the camera with the '
                          'nuscenes-devkit chain; pixel (int(v), int(u)); minimum depth wins'})
        result['gt_points'][fr['token']] = int(depth.shape[0])
        result['written'] += 1
    return result


def _check_image(path: Path, fr: dict, scene: str, verify: bool) -> None:
    if not path.is_file():
        raise FrameError(scene, path, 'missing camera image')
    if verify:
        from PIL import Image
        try:
            with Image.open(path) as im:
                size = im.size
                im.load()
        except Exception as e:  # PIL raises many types for broken files
            raise FrameError(scene, path, f'corrupt camera image: {e}') from None
        if size != (fr['width'], fr['height']):
            raise FrameError(scene, path, f'image is {size[0]}x{size[1]}, the sample_data table '
                                          f'says {fr["width"]}x{fr["height"]}')


# ------------------------------------------------------------------------------------------------
# split info records (main process)

def frame_info(rec: dict, index: int, offsets: Sequence[int], usable: set[str],
               gt_points: dict[str, int]) -> dict[str, Any]:
    """The info record of frame ``index`` of a scene record (layout in the package docstring).
    Neighbours are listed for the ``offsets`` whose frame exists and is ``usable``."""
    frames = rec['frames']
    fr = frames[index]
    w, h = fr['width'], fr['height']
    K = fr['K']
    neighbours = {}
    for o in offsets:
        j = index + o
        if 0 <= j < len(frames) and frames[j]['token'] in usable:
            nb = frames[j]
            neighbours[str(o)] = {
                'token': nb['token'], 'image': nb['image'], 'timestamp': nb['timestamp'],
                'is_key_frame': nb['is_key_frame'],
                'T': relative_pose(fr['global_from_cam'], nb['global_from_cam']).tolist()}
    gt = gt_points.get(fr['token'])
    return {
        'scene': rec['scene'], 'chain_index': index, 'token': fr['token'],
        'sample_token': fr['sample_token'], 'timestamp': fr['timestamp'],
        'is_key_frame': fr['is_key_frame'], 'image': fr['image'], 'width': w, 'height': h,
        'intrinsics': [K[0][0] / w, K[1][1] / h, K[0][2] / w, K[1][2] / h],
        'ego_speed': fr['ego_speed'], 'tags': rec['tags'], 'neighbours': neighbours,
        'gt_depth': gt_relpath(rec['scene'], fr['token']) if gt else None,
        'gt_points': gt or 0,
    }


def select_frames(rec: dict, subset: str, offsets: Sequence[int], usable: set[str],
                  gt_points: dict[str, int], min_speed: float, keyframes_only: bool
                  ) -> list[dict[str, Any]]:
    """Info records of one scene for ``subset``.

    ``train``: every usable frame (key frames and sweeps; only key frames with
    ``keyframes_only``) whose neighbours at all ``offsets`` are usable and whose ego speed is at
    least ``min_speed`` (md4all drops near-static frames, where the photometric loss has no
    parallax). ``val`` / ``test``: key frames with LiDAR ground truth (neighbours included
    where they exist).
    """
    out = []
    for i, fr in enumerate(rec['frames']):
        if fr['token'] not in usable:
            continue
        if subset == 'train':
            if keyframes_only and not fr['is_key_frame']:
                continue
            if fr['ego_speed'] < min_speed:
                continue
            info = frame_info(rec, i, offsets, usable, gt_points)
            if len(info['neighbours']) != len(offsets):
                continue
        else:
            if not fr['is_key_frame'] or not gt_points.get(fr['token']):
                continue
            info = frame_info(rec, i, offsets, usable, gt_points)
        out.append(info)
    return out
