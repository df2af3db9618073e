"""A tiny KITTI raw tree in the real on-disk format (``dataset-formats.md`` §2.1, §2.6).

``write_kitti_raw(root)`` writes one date folder with the three calibration files (the real
2011_09_26 calibration of Appendix B, with the image sizes, ``K_xx`` and ``P_rect_xx`` rows scaled
to the tiny image size) and ``len(drives)`` synced drives of ``num_frames`` frames each: the four
cameras (gray 00/01, RGB 02/03) with ``timestamps.txt``, velodyne scans (float32 N x 4) with
their three timestamp files, and oxts packets (30 values) with ``dataformat.txt``.

Every colour image is one flat colour given by :func:`fixture_color` (drive, frame, camera), so
tests can tell which file a loaded image came from, also after resizing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

DATE = '2011_09_26'
FULL_W, FULL_H = 1242, 375  # the real rectified size of 2011_09_26

# Appendix B, calib_cam_to_cam.txt (per camera: S, K, D, R, T, S_rect, R_rect, P_rect)
_CAM = {
    '00': dict(
        K='9.842439e+02 0.000000e+00 6.900000e+02 0.000000e+00 9.808141e+02 2.331966e+02 '
          '0.000000e+00 0.000000e+00 1.000000e+00',
        D='-3.728755e-01 2.037299e-01 2.219027e-03 1.383707e-03 -7.233722e-02',
        R='1.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00 '
          '0.000000e+00 0.000000e+00 1.000000e+00',
        T='2.573699e-16 -1.059758e-16 1.614870e-16',
        R_rect='9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 '
               '-4.278459e-03 7.402527e-03 4.351614e-03 9.999631e-01',
        P_rect='7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 '
               '1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00'),
    '01': dict(
        K='9.895267e+02 0.000000e+00 7.020000e+02 0.000000e+00 9.878386e+02 2.455590e+02 '
          '0.000000e+00 0.000000e+00 1.000000e+00',
        D='-3.644661e-01 1.790019e-01 1.148107e-03 -6.298563e-04 -5.314062e-02',
        R='9.993513e-01 1.860866e-02 -3.083487e-02 -1.887662e-02 9.997863e-01 -8.421873e-03 '
          '3.067156e-02 8.998467e-03 9.994890e-01',
        T='-5.370000e-01 4.822061e-03 -1.252488e-02',
        R_rect='9.996878e-01 -8.976826e-03 2.331651e-02 8.876121e-03 9.999508e-01 '
               '4.418952e-03 -2.335503e-02 -4.210612e-03 9.997184e-01',
        P_rect='7.215377e+02 0.000000e+00 6.095593e+02 -3.875744e+02 0.000000e+00 '
               '7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 '
               '1.000000e+00 0.000000e+00'),
    '02': dict(
        K='9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 9.569251e+02 2.241806e+02 '
          '0.000000e+00 0.000000e+00 1.000000e+00',
        D='-3.691481e-01 1.968681e-01 1.353473e-03 5.677587e-04 -6.770705e-02',
        R='9.999758e-01 -5.267463e-03 -4.552439e-03 5.251945e-03 9.999804e-01 -3.413835e-03 '
          '4.570332e-03 3.389843e-03 9.999838e-01',
        T='5.956621e-02 2.900141e-04 2.577209e-03',
        R_rect='9.998817e-01 1.511453e-02 -2.841595e-03 -1.511724e-02 9.998853e-01 '
               '-9.338510e-04 2.827154e-03 9.766976e-04 9.999955e-01',
        P_rect='7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 '
               '1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03'),
    '03': dict(
        K='9.037596e+02 0.000000e+00 6.957519e+02 0.000000e+00 9.019653e+02 2.242509e+02 '
          '0.000000e+00 0.000000e+00 1.000000e+00',
        D='-3.639558e-01 1.788651e-01 6.029694e-04 -3.922424e-04 -5.382460e-02',
        R='9.995599e-01 1.699522e-02 -2.431313e-02 -1.704422e-02 9.998531e-01 -1.809756e-03 '
          '2.427880e-02 2.223358e-03 9.997028e-01',
        T='-4.731050e-01 5.551470e-03 -5.250882e-03',
        R_rect='9.998321e-01 -7.193136e-03 1.685599e-02 7.232804e-03 9.999712e-01 '
               '-2.293585e-03 -1.683901e-02 2.415116e-03 9.998553e-01',
        P_rect='7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 '
               '7.215377e+02 1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 '
               '1.000000e+00 2.729905e-03'),
}
VELO_TO_CAM = ('calib_time: 15-Mar-2012 11:37:16\n'
               'R: 7.533745e-03 -9.999714e-01 -6.166020e-04 1.480249e-02 7.280733e-04 '
               '-9.998902e-01 9.998621e-01 7.523790e-03 1.480755e-02\n'
               'T: -4.069766e-03 -7.631618e-02 -2.717806e-01\n'
               'delta_f: 0.000000e+00 0.000000e+00\n'
               'delta_c: 0.000000e+00 0.000000e+00\n')
IMU_TO_VELO = ('calib_time: 25-May-2012 16:47:16\n'
               'R: 9.999976e-01 7.553071e-04 -2.035826e-03 -7.854027e-04 9.998898e-01 '
               '-1.482298e-02 2.024406e-03 1.482454e-02 9.998881e-01\n'
               'T: -8.086759e-01 3.195559e-01 -7.997231e-01\n')
OXTS_FIELDS = ('lat lon alt roll pitch yaw vn ve vf vl vu ax ay az af al au wx wy wz wf wl wu '
               'pos_accuracy vel_accuracy navstat numsats posmode velmode orimode').split()


def _fmt(values: np.ndarray) -> str:
    return ' '.join(f'{v:.6e}' for v in values)


def _scaled(text: str, rows: int, cols: int, sx: float, sy: float) -> str:
    """A K (3x3) / P (3x4) matrix with row 0 scaled by sx and row 1 by sy."""
    m = np.array([float(v) for v in text.split()]).reshape(rows, cols)
    m[0] *= sx
    m[1] *= sy
    return _fmt(m.reshape(-1))


def cam_to_cam_text(width: int, height: int) -> str:
    """``calib_cam_to_cam.txt`` of Appendix B for images of ``width`` x ``height``."""
    sx, sy = width / FULL_W, height / FULL_H
    lines = ['calib_time: 09-Jan-2012 13:57:47', 'corner_dist: 9.950000e-02']
    for cam, c in _CAM.items():
        lines += [f'S_{cam}: {_fmt(np.array([1392 * sx, 512 * sy]))}',
                  f'K_{cam}: {_scaled(c["K"], 3, 3, sx, sy)}',
                  f'D_{cam}: {c["D"]}', f'R_{cam}: {c["R"]}', f'T_{cam}: {c["T"]}',
                  f'S_rect_{cam}: {_fmt(np.array([width, height], float))}',
                  f'R_rect_{cam}: {c["R_rect"]}',
                  f'P_rect_{cam}: {_scaled(c["P_rect"], 3, 4, sx, sy)}']
    return '\n'.join(lines) + '\n'


def fixture_color(drive_index: int, frame: int, cam: int) -> tuple[int, int, int]:
    """The flat RGB colour of colour image ``cam`` (2 or 3) of ``frame`` in drive number
    ``drive_index`` (0-based position in ``drives``)."""
    return (10 + 20 * frame, 60 if cam == 2 else 160, 30 + 50 * drive_index)


def drive_folder(drive: int, date: str = DATE) -> str:
    return f'{date}/{date}_drive_{drive:04d}_sync'


@dataclass
class KittiFixture:
    """What :func:`write_kitti_raw` wrote (``folders`` relative to ``root``)."""
    root: Path
    date: str
    folders: list[str]
    num_frames: int
    height: int
    width: int
    points: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def image(self, folder: str, frame: int, cam: int) -> Path:
        return self.root / folder / f'image_0{cam}' / 'data' / f'{frame:010d}.png'

    def velodyne(self, folder: str, frame: int) -> Path:
        return self.root / folder / 'velodyne_points' / 'data' / f'{frame:010d}.bin'


def _timestamps(path: Path, n: int, start: dt.datetime, offset_us: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        t = start + dt.timedelta(microseconds=100_000 * i + offset_us)
        lines.append(t.strftime('%Y-%m-%d %H:%M:%S.%f') + '123\n')  # 9 fraction digits
    path.write_text(''.join(lines))


def write_velodyne(path: Path, points: np.ndarray) -> None:
    """Write (N, 4) points as KITTI's float32 ``.bin``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.asarray(points, dtype=np.float32).reshape(-1, 4).tofile(path)


def write_kitti_raw(root: str | Path, drives: Sequence[int] = (1, 2), num_frames: int = 6,
                    height: int = 32, width: int = 96, num_points: int = 400, seed: int = 0,
                    date: str = DATE) -> KittiFixture:
    """Write the tiny KITTI raw tree under ``root`` (see the module docstring)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    date_dir = root / date
    date_dir.mkdir(parents=True, exist_ok=True)
    (date_dir / 'calib_cam_to_cam.txt').write_text(cam_to_cam_text(width, height))
    (date_dir / 'calib_velo_to_cam.txt').write_text(VELO_TO_CAM)
    (date_dir / 'calib_imu_to_velo.txt').write_text(IMU_TO_VELO)
    fx = KittiFixture(root, date, [drive_folder(d, date) for d in drives], num_frames, height,
                      width)
    start = dt.datetime(2011, 9, 26, 13, 2, 25, 964389)
    for di, folder in enumerate(fx.folders):
        d = root / folder
        for cam in range(4):
            _timestamps(d / f'image_0{cam}' / 'timestamps.txt', num_frames, start)
            for f in range(num_frames):
                p = fx.image(folder, f, cam)
                p.parent.mkdir(parents=True, exist_ok=True)
                if cam < 2:
                    Image.new('L', (width, height), 40 + 10 * f).save(p)
                else:
                    Image.new('RGB', (width, height), fixture_color(di, f, cam)).save(p)
        velo = d / 'velodyne_points'
        _timestamps(velo / 'timestamps.txt', num_frames, start)
        _timestamps(velo / 'timestamps_start.txt', num_frames, start, -50_000)
        _timestamps(velo / 'timestamps_end.txt', num_frames, start, 50_000)
        for f in range(num_frames):
            pts = np.stack([rng.uniform(2, 40, num_points), rng.uniform(-8, 8, num_points),
                            rng.uniform(-2, 1, num_points), rng.uniform(0, 1, num_points)], 1)
            fx.points[(folder, f)] = pts.astype(np.float32)
            write_velodyne(fx.velodyne(folder, f), pts)
        oxts = d / 'oxts'
        (oxts / 'data').mkdir(parents=True, exist_ok=True)
        _timestamps(oxts / 'timestamps.txt', num_frames, start)
        (oxts / 'dataformat.txt').write_text(''.join(f'{n}: -\n' for n in OXTS_FIELDS))
        for f in range(num_frames):
            vals = [49.011 + 1e-6 * f, 8.422 + 1e-5 * f, 112.8, 0.02, 0.01, 0.5 + 0.001 * f]
            vals += [0.1] * 19 + [4, 11, 5, 5, 5]
            (oxts / 'data' / f'{f:010d}.txt').write_text(
                ' '.join(str(v) for v in vals[:25]) + ' ' + ' '.join(str(int(v)) for v in
                                                                     vals[25:]) + '\n')
    return fx
