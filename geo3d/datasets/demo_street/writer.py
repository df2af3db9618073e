"""Writers of the KITTI raw 'sync' layout (as pykitti and Monodepth2 read it).

``write_calib`` writes the three per-date calibration files; :class:`KittiDriveWriter` builds
one ``<date>/<date>_drive_<id>_sync/`` folder frame by frame inside a temporary sibling and
renames it into place when closed (a crash leaves no half-written drive)::

    image_02/data/%010d.png, image_03/data/%010d.png   8-bit RGB (left / right colour camera)
    image_0X/timestamps.txt                           'YYYY-MM-DD HH:MM:SS.nnnnnnnnn' per frame
    velodyne_points/data/%010d.bin                    float32 N x 4 (x, y, z, reflectance)
    velodyne_points/timestamps{,_start,_end}.txt
    oxts/data/%010d.txt                               one line of 30 values
    oxts/timestamps.txt, oxts/dataformat.txt
    proj_depth_demo/image_0X/%010d.png                demo only: rendered dense depth, uint16
                                                      metres * 256, 0 = no surface (sky)
    dynamic_mask_demo/image_0X/%010d.png              demo only (with moving objects): uint8,
                                                      255 where a moving object is seen

The two ``*_demo`` folders are not part of the real dataset (the real depth benchmark's
``proj_depth/groundtruth`` uses the same uint16 / 256 encoding but is semi-dense lidar).
"""
from __future__ import annotations

import io
import os
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from geo3d.utils.io import atomic_dir, atomic_write_text

from .oxts import OXTS_DATAFORMAT, format_oxts

__all__ = ['KittiDriveWriter', 'write_calib', 'format_timestamp', 'encode_depth_png',
           'decode_depth_png', 'drive_folder_name', 'DEPTH_DIR', 'DYNAMIC_DIR']

DEPTH_DIR = 'proj_depth_demo'
DYNAMIC_DIR = 'dynamic_mask_demo'
_EPOCH = datetime(1970, 1, 1)


def format_timestamp(ns: int) -> str:
    """KITTI timestamp text of ``ns`` nanoseconds since 1970-01-01 (naive, 9 fraction digits)."""
    sec, frac = divmod(int(ns), 10**9)
    return (_EPOCH + timedelta(seconds=sec)).strftime('%Y-%m-%d %H:%M:%S') + f'.{frac:09d}'


def drive_folder_name(date: str, drive: str) -> str:
    """``<date>_drive_<drive>_sync``, the folder pykitti opens for ``raw(base, date, drive)``."""
    return f'{date}_drive_{drive}_sync'


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()  # zlib level 3: half the time of the default 6, about 10 % larger
    Image.fromarray(array).save(buf, format='PNG', compress_level=3)
    return buf.getvalue()


def encode_depth_png(depth: np.ndarray) -> bytes:
    """(H, W) depth in metres (0 = invalid) -> 16-bit PNG bytes, value ``round(256 d)``
    (clipped to 65535, i.e. 255.996 m)."""
    d = np.asarray(depth, np.float64)
    if d.ndim != 2:
        raise ValueError(f'encode_depth_png: depth must be (H, W), got shape {d.shape}')
    v = np.clip(np.round(np.where(np.isfinite(d) & (d > 0), d, 0.0) * 256.0), 0, 65535)
    return _png_bytes(v.astype(np.uint16))


def decode_depth_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a depth PNG written by :func:`encode_depth_png`: (H, W) float32 metres, 0 invalid."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.dtype != np.uint16 and arr.dtype != np.int32:
        raise ValueError(f'{path}: expected a 16-bit depth PNG, got dtype {arr.dtype}')
    return arr.astype(np.float32) / 256.0


def write_calib(date_dir: str | os.PathLike[str], texts: dict[str, str]) -> None:
    """Write ``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``, ``calib_imu_to_velo.txt``
    (``texts`` maps file name -> contents) into ``date_dir``, each atomically."""
    d = Path(date_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        atomic_write_text(d / name, text, fsync=False)


class KittiDriveWriter:
    """Context manager writing one drive in the KITTI raw sync layout.

    Example::

        with KittiDriveWriter(root, '2011_09_26', '9001') as w:
            w.add_frame(ts_ns, {2: left, 3: right}, velo, oxts_row, depth={2: d2, 3: d3})

    Args:
        root: dataset root (the folder that holds ``<date>/``).
        date: ``YYYY_MM_DD``.
        drive: 4-digit drive id.
        cams: colour cameras written (2 = left, 3 = right).
        overwrite: replace an existing drive folder (else FileExistsError).
    """

    def __init__(self, root: str | os.PathLike[str], date: str, drive: str,
                 cams: tuple[int, ...] = (2, 3), overwrite: bool = True) -> None:
        if not (len(drive) == 4 and drive.isdigit()):
            raise ValueError(f'KittiDriveWriter: drive must be 4 digits, got {drive!r}')
        self.final = Path(root) / date / drive_folder_name(date, drive)
        self.cams = tuple(cams)
        self.overwrite = overwrite
        self._stack = ExitStack()
        self._dir: Path | None = None
        self._stamps: list[int] = []
        self._depth_cams: set[int] = set()

    def __enter__(self) -> 'KittiDriveWriter':
        self._dir = self._stack.enter_context(atomic_dir(self.final, overwrite=self.overwrite,
                                                         fsync=False))
        for sub in [f'image_0{c}' for c in self.cams] + ['velodyne_points', 'oxts']:
            (self._dir / sub / 'data').mkdir(parents=True)
        return self

    def add_frame(self, timestamp_ns: int, images: dict[int, np.ndarray], velo: np.ndarray,
                  oxts: np.ndarray, depth: dict[int, np.ndarray] | None = None,
                  dynamic: dict[int, np.ndarray] | None = None) -> int:
        """Append the next frame; returns its index.

        Args:
            timestamp_ns: nanoseconds since 1970 (all sensors share it; the sweep spans
                +-50 ms).
            images: camera -> (H, W, 3) uint8 RGB, for every camera in ``cams``.
            velo: (N, 4) float32 velodyne points.
            oxts: (30,) OXTS values.
            depth: camera -> (H, W) rendered depth in metres (0 = sky), optional.
            dynamic: camera -> (H, W) bool mask of moving objects, optional.
        """
        if self._dir is None:
            raise RuntimeError('KittiDriveWriter.add_frame outside of "with"')
        if set(images) != set(self.cams):
            raise ValueError(f'add_frame: images for cameras {sorted(images)}, expected '
                             f'{list(self.cams)}')
        velo = np.asarray(velo)
        if velo.ndim != 2 or velo.shape[1] != 4 or velo.dtype != np.float32:
            raise ValueError(f'add_frame: velo must be float32 (N, 4), got {velo.dtype} '
                             f'{velo.shape}')
        k = len(self._stamps)
        name = f'{k:010d}'
        for c, img in images.items():
            img = np.asarray(img)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f'add_frame: image_0{c} must be uint8 (H, W, 3), got '
                                 f'{img.dtype} {img.shape}')
            (self._dir / f'image_0{c}' / 'data' / f'{name}.png').write_bytes(_png_bytes(img))
        (self._dir / 'velodyne_points' / 'data' / f'{name}.bin').write_bytes(velo.tobytes())
        (self._dir / 'oxts' / 'data' / f'{name}.txt').write_text(format_oxts(oxts))
        for c, d in (depth or {}).items():
            sub = self._dir / DEPTH_DIR / f'image_0{c}'
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f'{name}.png').write_bytes(encode_depth_png(d))
        for c, m in (dynamic or {}).items():
            sub = self._dir / DYNAMIC_DIR / f'image_0{c}'
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f'{name}.png').write_bytes(_png_bytes(np.where(m, 255, 0).astype(np.uint8)))
        self._stamps.append(int(timestamp_ns))
        return k

    def _stamp_file(self, path: Path, offset_ns: int = 0) -> None:
        path.write_text(''.join(format_timestamp(t + offset_ns) + '\n' for t in self._stamps))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        try:
            if exc_type is None and self._dir is not None:
                for c in self.cams:
                    self._stamp_file(self._dir / f'image_0{c}' / 'timestamps.txt')
                self._stamp_file(self._dir / 'oxts' / 'timestamps.txt')
                v = self._dir / 'velodyne_points'
                self._stamp_file(v / 'timestamps.txt')
                self._stamp_file(v / 'timestamps_start.txt', -50_000_000)
                self._stamp_file(v / 'timestamps_end.txt', 50_000_000)
                (self._dir / 'oxts' / 'dataformat.txt').write_text(OXTS_DATAFORMAT)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self._stack.__exit__(exc_type, exc, tb)
