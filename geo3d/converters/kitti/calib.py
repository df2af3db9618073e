"""KITTI raw calibration (``<date>/calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``).

Parsing is pykitti's (:func:`pykitti.utils.read_calib_file`); this module checks that the keys
the depth pipeline needs are there with the right number of values and composes the matrices.
Conventions follow the KITTI devkit as used by Monodepth2 (``kitti_utils.generate_depth_map``):
velodyne -> unrectified cam0 by ``[R|T]`` of ``calib_velo_to_cam.txt``, rectification by
``R_rect_00``, projection into colour camera ``c`` by ``P_rect_0c`` (3, 4).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from .common import DriveError, import_pykitti_utils

_pykitti = import_pykitti_utils()
read_calib_file = _pykitti.read_calib_file
transform_from_rot_trans = _pykitti.transform_from_rot_trans

CAM_TO_CAM = 'calib_cam_to_cam.txt'
VELO_TO_CAM = 'calib_velo_to_cam.txt'
COLOR_CAMS: tuple[int, ...] = (2, 3)
# key -> number of values, for the keys read from each file
CAM_TO_CAM_KEYS: dict[str, int] = {'R_rect_00': 9, **{f'P_rect_0{c}': 12 for c in COLOR_CAMS},
                                   **{f'S_rect_0{c}': 2 for c in COLOR_CAMS}}
VELO_TO_CAM_KEYS: dict[str, int] = {'R': 9, 'T': 3}


@dataclass(frozen=True)
class KittiCalib:
    """Calibration of one KITTI raw date folder (the colour cameras 2 and 3).

    Attributes:
        calib_dir: the ``<root>/<date>`` folder it was read from.
        P_rect: camera id -> (3, 4) rectified projection ``P_rect_0c``.
        R_rect_00: (3, 3) rectifying rotation of camera 0.
        velo_to_cam: (4, 4) velodyne -> unrectified camera 0.
        image_size: camera id -> ``(width, height)`` from ``S_rect_0c``.
    """
    calib_dir: str
    P_rect: dict[int, np.ndarray]
    R_rect_00: np.ndarray
    velo_to_cam: np.ndarray
    image_size: dict[int, tuple[int, int]]

    def velo_to_image(self, cam: int) -> np.ndarray:
        """(3, 4) projection velodyne -> image of ``cam``: ``P_rect_0c · R_rect_00 · [R|T]``."""
        rect = np.eye(4)
        rect[:3, :3] = self.R_rect_00
        return self.P_rect[cam] @ rect @ self.velo_to_cam

    def intrinsics(self, cam: int) -> np.ndarray:
        """(3, 3) pixel intrinsics of ``cam`` (the left block of ``P_rect_0c``)."""
        return self.P_rect[cam][:, :3].copy()

    def normalized_intrinsics(self, cam: int, width: int | None = None,
                              height: int | None = None) -> np.ndarray:
        """(4, 4) intrinsics normalised as Monodepth2's ``K``: row 0 / width, row 1 / height.

        ``width``/``height`` default to ``S_rect_0c`` (the rectified image size).
        """
        w, h = self.image_size[cam]
        w = w if width is None else width
        h = h if height is None else height
        k = np.eye(4)
        k[:3, :3] = self.intrinsics(cam)
        k[0, :] /= float(w)
        k[1, :] /= float(h)
        return k

    def stereo_baseline(self, cam_a: int = 2, cam_b: int = 3) -> float:
        """Distance (m) between the optical centres of two rectified cameras.

        Rectified cameras differ by a translation along x only, ``t_c = P_rect_0c[0, 3] /
        P_rect_0c[0, 0]``; this is the distance pykitti reports as ``calib.b_rgb``.
        """
        ta = self.P_rect[cam_a][0, 3] / self.P_rect[cam_a][0, 0]
        tb = self.P_rect[cam_b][0, 3] / self.P_rect[cam_b][0, 0]
        return float(abs(ta - tb))


def _read_keys(path: Path, keys: dict[str, int], drive: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DriveError(drive, path, 'missing calibration file')
    try:
        data = read_calib_file(str(path))
    except ValueError:
        # pykitti splits every line on ':'; name the first line where that fails
        lines = path.read_text(errors='replace').splitlines()
        bad = next((i for i, ln in enumerate(lines, 1) if ':' not in ln), None)
        where = f'line {bad} has no "key: values"' if bad else 'unparsable'
        raise DriveError(drive, path, f'malformed calibration file ({where}; KITTI calibration '
                                      'files have one "key: values" per line and no blank '
                                      'lines)') from None
    except (OSError, UnicodeDecodeError) as e:
        raise DriveError(drive, path, f'cannot read calibration file: {e}') from None
    out = {}
    for key, count in keys.items():
        if key not in data:
            raise DriveError(drive, path, f'missing calibration key {key!r} (or its value is not '
                                          f'{count} numbers)')
        value = np.asarray(data[key], dtype=np.float64)
        if value.size != count:
            raise DriveError(drive, path, f'calibration key {key!r} has {value.size} values, '
                                          f'expected {count}')
        if not np.all(np.isfinite(value)):
            raise DriveError(drive, path, f'calibration key {key!r} has non-finite values')
        out[key] = value
    return out


def read_calib(calib_dir: str | os.PathLike[str], drive: str = '') -> KittiCalib:
    """Read and check the calibration of the date folder ``calib_dir``.

    Raises:
        DriveError: naming the calibration file that is missing, unparsable, lacks a key, or
            has a wrong number of values (``drive`` is used as the error's drive name).
    """
    calib_dir = Path(calib_dir)
    drive = drive or calib_dir.name
    c2c = _read_keys(calib_dir / CAM_TO_CAM, CAM_TO_CAM_KEYS, drive)
    v2c = _read_keys(calib_dir / VELO_TO_CAM, VELO_TO_CAM_KEYS, drive)
    sizes = {}
    for c in COLOR_CAMS:
        w, h = c2c[f'S_rect_0{c}']
        if w < 1 or h < 1 or w != int(w) or h != int(h):
            raise DriveError(drive, calib_dir / CAM_TO_CAM,
                             f'S_rect_0{c} = {w} {h} is not a positive integer image size')
        sizes[c] = (int(w), int(h))
    for c in COLOR_CAMS:
        if c2c[f'P_rect_0{c}'][0] <= 0:
            raise DriveError(drive, calib_dir / CAM_TO_CAM,
                             f'P_rect_0{c} has a non-positive focal length')
    return KittiCalib(
        calib_dir=str(calib_dir),
        P_rect={c: c2c[f'P_rect_0{c}'].reshape(3, 4) for c in COLOR_CAMS},
        R_rect_00=c2c['R_rect_00'].reshape(3, 3),
        velo_to_cam=transform_from_rot_trans(v2c['R'], v2c['T']).astype(np.float64),
        image_size=sizes)
