#!/usr/bin/env python
"""Demo KITTI street generator: time per rendered view, per lidar sweep and per written frame.

    .venv/bin/python bench/bench_demo_street.py [--quick]

Prints one table (CPU process time and wall time, single process). The default demo
(4 drives x 40 frames at 416 x 128, two cameras + a 512-column lidar per frame, and a
50-frame video drive) costs about ``160 * frame + 50 * view`` of CPU, split over the
generator's workers.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from geo3d.datasets.demo_street import (kitti_calib_texts, make_demo_drive,  # noqa: E402
                                        make_demo_kitti, make_rig, render_view, scan_velodyne)


def _timed(fn, repeats: int) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.process_time() - c0) / repeats, (time.perf_counter() - w0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='small sizes, for a smoke run')
    args = ap.parse_args()
    sizes = [(64, 208)] if args.quick else [(128, 416), (192, 640)]
    repeats = 2 if args.quick else 5
    print(f'{"H x W":>10} {"what":>30} {"cpu ms":>8} {"wall ms":>8}')
    for h, w in sizes:
        rig = make_rig(kitti_calib_texts(w, h))
        drive = make_demo_drive(0, 0, 40, rig)
        t = float(drive.times[20])
        T = drive.imu_poses()[20]
        cam = T @ np.linalg.inv(rig.T_cam_imu(2))
        velo = T @ np.linalg.inv(rig.T_velo_imu)
        rows = [
            ('camera view (shadows)', lambda: render_view(drive.scene, t, cam, rig.K(2), h, w)),
            ('camera view (no shadows)',
             lambda: render_view(drive.scene, t, cam, rig.K(2), h, w, shadows=False)),
            ('lidar 64 x 512', lambda: scan_velodyne(drive.scene, t, velo, 512)),
            ('lidar 64 x 1024', lambda: scan_velodyne(drive.scene, t, velo, 1024)),
        ]
        for name, fn in rows:
            cpu, wall = _timed(fn, repeats)
            print(f'{f"{h} x {w}":>10} {name:>30} {cpu * 1e3:>8.1f} {wall * 1e3:>8.1f}')
        frames = 4 if args.quick else 10
        with tempfile.TemporaryDirectory() as tmp:
            cpu, wall = _timed(lambda: make_demo_kitti(tmp, num_drives=1, frames_per_drive=frames,
                                                       height=h, width=w, video_frames=0), 1)
        print(f'{f"{h} x {w}":>10} {"written frame (2 cams+lidar)":>30} '
              f'{cpu / frames * 1e3:>8.1f} {wall / frames * 1e3:>8.1f}')


if __name__ == '__main__':
    main()
