"""Discovery and validation of KITTI raw drives (``<root>/<date>/<date>_drive_<dddd>_sync``).

:func:`scan_drive` checks one drive and returns a :class:`DriveScan` (a JSON-friendly record
that the converter caches under ``OUT/drives/``): calibration keys, the colour images of
cameras 2 and 3 (present for the same frames, readable headers, the calibrated size), the
velodyne scans (sizes). Every problem raises :class:`DriveError` naming the file.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .calib import COLOR_CAMS, CAM_TO_CAM, VELO_TO_CAM, read_calib
from .common import (CONVERTER_VERSION, DATE_RE, DRIVE_RE, IMAGE_EXTS, VELO_DIR, DriveError,
                     image_dir)
from .velodyne import check_velodyne_file

_FRAME_RE = re.compile(r'^(\d{10})(\.[a-z]+)$')


@dataclass
class DriveScan:
    """What the converter knows about one valid drive.

    Attributes:
        folder: ``<date>/<date>_drive_<dddd>_sync`` (relative to the raw root, ``/``-separated).
        img_ext: ``'.png'`` or ``'.jpg'`` (Monodepth2's converted JPEGs).
        frames: sorted frame indices that have both colour images.
        velodyne_frames: sorted frame indices that have a velodyne scan (subset of ``frames``).
        image_size: camera id (as str, JSON keys) -> ``[width, height]``.
        K: camera id -> (4, 4) normalised intrinsics as nested lists (row 0 / W, row 1 / H).
        stereo_baseline: distance (m) between cameras 2 and 3.
        signature: listing fingerprint used to decide whether a cached scan is still valid.
        verified: whether every image was fully decoded-checked (``verify_images``).
    """
    folder: str
    img_ext: str
    frames: list[int]
    velodyne_frames: list[int]
    image_size: dict[str, list[int]]
    K: dict[str, list[list[float]]]
    stereo_baseline: float
    signature: dict[str, list[int]] = field(default_factory=dict)
    verified: bool = False
    version: str = CONVERTER_VERSION
    warnings: list[str] = field(default_factory=list)

    @property
    def date(self) -> str:
        return self.folder.split('/')[0]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> 'DriveScan':
        return cls(**obj)


def find_drives(root: str | os.PathLike[str]) -> list[str]:
    """Sorted ``<date>/<date>_drive_<dddd>_sync`` folders under ``root`` (synced drives only)."""
    root = Path(root)
    out = []
    for date_dir in sorted(p for p in root.iterdir() if p.is_dir() and DATE_RE.match(p.name)):
        for d in sorted(date_dir.iterdir()):
            m = DRIVE_RE.match(d.name)
            if d.is_dir() and m and m.group('date') == date_dir.name:
                out.append(f'{date_dir.name}/{d.name}')
    return out


def _list_frames(d: Path) -> dict[int, str]:
    """frame index -> file name for ``%010d.<ext>`` files in ``d`` (empty if ``d`` is missing)."""
    out: dict[int, str] = {}
    if not d.is_dir():
        return out
    for entry in os.scandir(d):
        m = _FRAME_RE.match(entry.name)
        if m:
            idx = int(m.group(1))
            # a drive holding both PNG and JPEG of a frame: keep the PNG (the original)
            if idx not in out or m.group(2) == '.png':
                out[idx] = entry.name
    return out


def listing_signature(root: str | os.PathLike[str], folder: str) -> dict[str, list[int]]:
    """Fingerprint ``[count, total bytes, newest mtime_ns]`` of the data folders and calib files
    of a drive; a cached scan is reused only while this is unchanged."""
    root = Path(root)
    sig: dict[str, list[int]] = {}
    for sub in [image_dir(c) for c in COLOR_CAMS] + [VELO_DIR]:
        d = root / folder / sub
        n = size = mtime = 0
        if d.is_dir():
            for entry in os.scandir(d):
                st = entry.stat()
                n, size, mtime = n + 1, size + st.st_size, max(mtime, st.st_mtime_ns)
        sig[sub] = [n, size, mtime]
    for name in (CAM_TO_CAM, VELO_TO_CAM):
        p = root / folder.split('/')[0] / name
        st = p.stat() if p.is_file() else None
        sig[name] = [1, st.st_size, st.st_mtime_ns] if st else [0, 0, 0]
    return sig


def _check_image(path: Path, size: tuple[int, int], calib_file: Path, cam: int, drive: str,
                 verify: bool) -> None:
    try:
        with Image.open(path) as im:
            got = im.size
            if verify:
                im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DriveError(drive, path, f'corrupt image: {e}') from None
    if tuple(got) != tuple(size):
        raise DriveError(drive, path, f'image is {got[0]}x{got[1]} but S_rect_0{cam} in '
                                      f'{calib_file} says {size[0]}x{size[1]}')


def scan_drive(root: str | os.PathLike[str], folder: str,
               verify_images: bool = False) -> DriveScan:
    """Validate one drive and describe it.

    Args:
        root: KITTI raw root (holding the ``<date>`` folders).
        folder: ``<date>/<date>_drive_<dddd>_sync``.
        verify_images: fully check every image (:meth:`PIL.Image.Image.verify`); by default only
            the headers are read (size, format).

    Raises:
        DriveError: naming the missing/corrupt file (calibration file or key, image, scan).
    """
    root = Path(root)
    drive_dir = root / folder
    date = folder.split('/')[0]
    if not drive_dir.is_dir():
        raise DriveError(folder, drive_dir, 'missing drive directory')
    calib = read_calib(root / date, folder)
    calib_file = root / date / CAM_TO_CAM
    frames_per_cam = {}
    for cam in COLOR_CAMS:
        d = drive_dir / image_dir(cam)
        if not d.is_dir():
            raise DriveError(folder, d, 'missing image directory')
        frames_per_cam[cam] = _list_frames(d)
        if not frames_per_cam[cam]:
            raise DriveError(folder, d, f'no images named %010d{"|".join(IMAGE_EXTS)}')
    exts = {os.path.splitext(n)[1] for fr in frames_per_cam.values() for n in fr.values()}
    img_ext = '.png' if '.png' in exts else sorted(exts)[0]
    if img_ext not in IMAGE_EXTS:
        raise DriveError(folder, drive_dir / image_dir(2), f'unsupported image type {img_ext}')
    all_frames = sorted(set().union(*frames_per_cam.values()))
    for cam in COLOR_CAMS:
        for idx in all_frames:
            name = frames_per_cam[cam].get(idx)
            if name is None or os.path.splitext(name)[1] != img_ext:
                other = next(c for c in COLOR_CAMS if c != cam)
                raise DriveError(folder, drive_dir / image_dir(cam) / f'{idx:010d}{img_ext}',
                                 f'missing frame (image_0{other} has frame {idx})')
    for cam in COLOR_CAMS:
        for idx in all_frames:
            _check_image(drive_dir / image_dir(cam) / f'{idx:010d}{img_ext}',
                         calib.image_size[cam], calib_file, cam, folder, verify_images)
    velo = _list_frames(drive_dir / VELO_DIR)
    velo_frames = []
    for idx in all_frames:
        if idx in velo:
            if not velo[idx].endswith('.bin'):
                continue
            check_velodyne_file(drive_dir / VELO_DIR / velo[idx], folder)
            velo_frames.append(idx)
    warnings = []
    if velo and len(velo_frames) < len(all_frames):
        missing = [i for i in all_frames if i not in set(velo_frames)]
        warnings.append(f'{len(missing)} frame(s) have no velodyne scan, first '
                        f'{drive_dir / VELO_DIR / f"{missing[0]:010d}.bin"}')
    return DriveScan(
        folder=folder, img_ext=img_ext, frames=all_frames, velodyne_frames=velo_frames,
        image_size={str(c): list(calib.image_size[c]) for c in COLOR_CAMS},
        K={str(c): calib.normalized_intrinsics(c).tolist() for c in COLOR_CAMS},
        stereo_baseline=calib.stereo_baseline(2, 3),
        signature=listing_signature(root, folder), verified=verify_images, warnings=warnings)
