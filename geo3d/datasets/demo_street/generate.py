"""The whole demo: a few drives through procedural streets, in the KITTI raw sync layout, plus
a demo video from a held-out drive.

:func:`make_demo_kitti` writes (see :mod:`.writer` for the per-drive files)::

    OUT/2011_09_26/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/2011_09_26/2011_09_26_drive_9001_sync/ ... drive_900N_sync/
    OUT/demo_video.mp4          camera-2 frames of one more drive that is NOT in the tree
    OUT/demo_kitti.json         what was generated (drives, sizes, seed, video)

Drive ids start at 9001 so that they never collide with real 2011_09_26 drives (<= 0119) or
the Eigen split files. Each drive (and the video drive) has its own street, trajectory,
global heading and GPS origin, all drawn from ``(seed, drive number)``: the same arguments give
byte-identical files, whatever ``workers`` is.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from geo3d.utils.io import atomic_write_text

from .calib import KittiRig, kitti_calib_texts, make_rig
from .lidar import scan_velodyne
from .oxts import oxts_packets
from .renderer import render_view
from .scene import StreetScene, make_street_scene
from .trajectory import StreetTrajectory, random_trajectory
from .video import write_video
from .writer import KittiDriveWriter, drive_folder_name, write_calib

__all__ = ['DEMO_DATE', 'FIRST_DRIVE', 'VELODYNE_HEIGHT', 'FRAME_PERIOD', 'MANIFEST',
           'VIDEO_NAME', 'DemoDrive', 'DemoKittiSummary', 'demo_drive_ids', 'make_demo_drive',
           'render_demo_frame', 'make_demo_kitti']

DEMO_DATE = '2011_09_26'
FIRST_DRIVE = 9001
VELODYNE_HEIGHT = 1.73  # metres above the road, as on the KITTI car
FRAME_PERIOD = 0.1      # seconds (10 Hz)
MANIFEST = 'demo_kitti.json'
VIDEO_NAME = 'demo_video.mp4'
_T0 = datetime(2011, 9, 26, 13, 0, 0)


@dataclass
class DemoDrive:
    """One demo drive before rendering.

    Attributes:
        scene: the street (static geometry + moving cars).
        trajectory: the ego (IMU) trajectory in the road frame.
        times: (T,) frame times in seconds from the drive start (10 Hz with +-2 ms jitter,
            whole nanoseconds).
        start_ns: absolute time of ``times[0]`` (ns since 1970).
        heading: yaw of the road's +x axis in the ENU world (radians, 0 = east).
        lat0, lon0, alt0: GPS position of the first frame.
    """
    scene: StreetScene
    trajectory: StreetTrajectory
    times: np.ndarray
    start_ns: int
    heading: float
    lat0: float
    lon0: float
    alt0: float

    def timestamps_ns(self) -> np.ndarray:
        """(T,) int64 absolute frame times."""
        return self.start_ns + np.round(self.times * 1e9).astype(np.int64)

    def imu_poses(self) -> np.ndarray:
        """(T, 4, 4) ``T_road_imu`` per frame."""
        return self.trajectory.pose(self.times)

    def oxts(self) -> np.ndarray:
        """(T, 30) OXTS packets per frame."""
        return oxts_packets(self.trajectory, self.times, self.heading, self.lat0, self.lon0,
                            self.alt0)


@dataclass
class DemoKittiSummary:
    """What :func:`make_demo_kitti` wrote: ``root``, ``date``, ``drives`` (4-digit ids),
    ``frames_per_drive``, image ``height``/``width``, ``video`` (path or None), ``seconds``."""
    root: Path
    date: str
    drives: list[str]
    frames_per_drive: int
    height: int
    width: int
    video: Path | None
    seconds: float

    def drive_dirs(self) -> list[Path]:
        return [self.root / self.date / drive_folder_name(self.date, d) for d in self.drives]


def demo_drive_ids(num_drives: int) -> list[str]:
    """['9001', '9002', ...]."""
    return [f'{FIRST_DRIVE + k:04d}' for k in range(num_drives)]


def imu_height(rig: KittiRig) -> float:
    """IMU height above the road such that the velodyne sits at :data:`VELODYNE_HEIGHT`."""
    return VELODYNE_HEIGHT - float(np.linalg.inv(rig.T_velo_imu)[2, 3])


def make_demo_drive(seed: int, index: int, frames: int, rig: KittiRig,
                    moving_objects: int = 0) -> DemoDrive:
    """Draw drive ``index`` of the demo with ``seed``: trajectory, street, timing, GPS origin."""
    if frames < 1:
        raise ValueError(f'make_demo_drive: frames must be >= 1, got {frames}')
    rng = np.random.default_rng([seed, index, 0])
    traj = random_trajectory(rng, imu_height(rig))
    jitter = rng.uniform(-0.002, 0.002, frames)
    jitter[0] = 0.0
    times = np.round((np.arange(frames) * FRAME_PERIOD + jitter) * 1e9) / 1e9
    t_end = float(times[-1])
    scene = make_street_scene([seed, index, 1], (float(traj.x(0.0)), float(traj.x(t_end))),
                              traj.lane_y, traj.speed, moving_objects)
    start = (_T0 - datetime(1970, 1, 1)).total_seconds() + 600.0 * index \
        + float(rng.uniform(0.0, 60.0))
    return DemoDrive(scene, traj, times, int(round(start * 1e9)),
                     heading=float(rng.uniform(-math.pi, math.pi)),
                     lat0=49.0 + float(rng.uniform(0.0, 0.03)),
                     lon0=8.39 + float(rng.uniform(0.0, 0.05)),
                     alt0=float(rng.uniform(110.0, 120.0)))


def render_demo_frame(drive: DemoDrive, k: int, rig: KittiRig, cams: tuple[int, ...] = (2, 3),
                      lidar_azimuth_steps: int | None = 512, shadows: bool = True) -> dict:
    """Render frame ``k``: {'images': {cam: rgb}, 'depth': {cam: depth}, 'dynamic': {cam:
    mask}, 'velo': (N, 4) float32 or None}."""
    t = float(drive.times[k])
    T_road_imu = drive.trajectory.pose(t)
    out: dict = {'images': {}, 'depth': {}, 'dynamic': {}, 'velo': None}
    for cam in cams:
        T_road_cam = T_road_imu @ np.linalg.inv(rig.T_cam_imu(cam))
        view = render_view(drive.scene, t, T_road_cam, rig.K(cam), rig.height, rig.width,
                           shadows=shadows)
        out['images'][cam] = view.rgb
        out['depth'][cam] = view.depth
        out['dynamic'][cam] = view.dynamic
    if lidar_azimuth_steps:
        out['velo'] = scan_velodyne(drive.scene, t, T_road_imu @ np.linalg.inv(rig.T_velo_imu),
                                    azimuth_steps=lidar_azimuth_steps)
    return out


def _write_drive(root: str, seed: int, index: int, frames: int, width: int, height: int,
                 moving_objects: int, lidar_azimuth_steps: int, shadows: bool) -> str:
    rig = make_rig(kitti_calib_texts(width, height))
    drive = make_demo_drive(seed, index, frames, rig, moving_objects)
    drive_id = f'{FIRST_DRIVE + index:04d}'
    stamps = drive.timestamps_ns()
    oxts = drive.oxts()
    with KittiDriveWriter(root, DEMO_DATE, drive_id) as w:
        for k in range(frames):
            f = render_demo_frame(drive, k, rig, (2, 3), lidar_azimuth_steps, shadows)
            w.add_frame(int(stamps[k]), f['images'], f['velo'], oxts[k], depth=f['depth'],
                        dynamic=f['dynamic'] if moving_objects else None)
    return drive_id


def _write_video(path: str, seed: int, index: int, frames: int, width: int, height: int,
                 moving_objects: int, shadows: bool) -> str:
    rig = make_rig(kitti_calib_texts(width, height))
    drive = make_demo_drive(seed, index, frames, rig, moving_objects)
    write_video(path, (render_demo_frame(drive, k, rig, (2,), None, shadows)['images'][2]
                       for k in range(frames)), fps=int(round(1.0 / FRAME_PERIOD)))
    return path


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Remove demo drives listed by a previous manifest that this run does not write."""
    try:
        old = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return
    for d in old.get('drives', []):
        if d not in keep and isinstance(d, str) and d.isdigit() and len(d) == 4:
            shutil.rmtree(out / DEMO_DATE / drive_folder_name(DEMO_DATE, d), ignore_errors=True)


def _refuse_foreign_root(root: Path, texts: dict[str, str]) -> None:
    """Refuse to write into a KITTI root that holds other 2011_09_26 calibration files and no
    demo manifest (a real download): the demo would overwrite its calibration."""
    calib = root / DEMO_DATE / 'calib_cam_to_cam.txt'
    if (calib.is_file() and not (root / MANIFEST).is_file()
            and calib.read_text() != texts['calib_cam_to_cam.txt']):
        raise FileExistsError(f'make_demo_kitti: {calib} exists and was not written by the demo '
                              f'generator (no {MANIFEST}); refusing to overwrite a real KITTI '
                              f'calibration, choose an empty output folder')


def make_demo_kitti(out: str | os.PathLike[str], num_drives: int = 4,
                    frames_per_drive: int = 40, height: int = 128, width: int = 416,
                    seed: int = 0, moving_objects: int = 0, video_frames: int = 50,
                    lidar_azimuth_steps: int = 512, shadows: bool = True,
                    workers: int = 1) -> DemoKittiSummary:
    """Write the demo KITTI raw dataset (and video) under ``out``.

    Args:
        out: dataset root (pass it to ``pykitti.raw(out, '2011_09_26', '9001')`` or to the
            KITTI converter as ``--root``).
        num_drives: drives written into the tree (ids 9001, 9002, ...).
        frames_per_drive: frames per drive (10 Hz, about 1 m apart).
        height, width: rendered image size (KITTI-like aspect; real KITTI is 375 x 1242).
        seed: everything is drawn from it; same arguments -> byte-identical files.
        moving_objects: independently moving cars per drive (0 = static world; even ones drive
            ahead in the ego lane at about the ego speed, odd ones come the other way). With
            moving objects each drive also gets ``dynamic_mask_demo/``.
        video_frames: frames of the held-out video drive (0 = no video).
        lidar_azimuth_steps: velodyne columns per revolution (64 rings each).
        shadows: render sun shadows.
        workers: processes rendering drives in parallel (1 = in this process).

    Returns:
        :class:`DemoKittiSummary`.
    """
    for name, v, lo in (('num_drives', num_drives, 1), ('frames_per_drive', frames_per_drive, 1),
                        ('height', height, 8), ('width', width, 8),
                        ('moving_objects', moving_objects, 0), ('video_frames', video_frames, 0),
                        ('lidar_azimuth_steps', lidar_azimuth_steps, 8), ('workers', workers, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f'make_demo_kitti: {name} must be an integer >= {lo}, got {v!r}')
    t0 = time.perf_counter()
    root = Path(out)
    texts = kitti_calib_texts(width, height)
    _refuse_foreign_root(root, texts)
    root.mkdir(parents=True, exist_ok=True)
    ids = demo_drive_ids(num_drives)
    _remove_stale(root, set(ids))
    write_calib(root / DEMO_DATE, texts)
    video = root / VIDEO_NAME if video_frames else None
    jobs = [(_write_drive, (str(root), seed, k, frames_per_drive, width, height, moving_objects,
                            lidar_azimuth_steps, shadows)) for k in range(num_drives)]
    if video is not None:
        jobs.append((_write_video, (str(video), seed, num_drives, video_frames, width, height,
                                    moving_objects, shadows)))
    if workers == 1:
        for fn, args in jobs:
            fn(*args)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in [pool.submit(fn, *args) for fn, args in jobs]:
                fut.result()
    manifest = {
        'generator': 'geo3d.datasets.demo_street.make_demo_kitti', 'format': 'KITTI raw sync',
        'date': DEMO_DATE, 'drives': ids,
        'folders': [f'{DEMO_DATE}/{drive_folder_name(DEMO_DATE, d)}' for d in ids],
        'frames_per_drive': frames_per_drive, 'height': height, 'width': width, 'seed': seed,
        'moving_objects': moving_objects, 'lidar_azimuth_steps': lidar_azimuth_steps,
        'shadows': shadows, 'frame_rate_hz': 1.0 / FRAME_PERIOD,
        'video': VIDEO_NAME if video is not None else None, 'video_frames': video_frames,
        'video_drive': (f'{FIRST_DRIVE + num_drives:04d} (camera 2 only, not in the tree)'
                        if video is not None else None),
    }
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2) + '\n', fsync=False)
    return DemoKittiSummary(root, DEMO_DATE, ids, frames_per_drive, height, width, video,
                            time.perf_counter() - t0)
