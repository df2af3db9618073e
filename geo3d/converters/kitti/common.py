"""Constants, exceptions and result records shared by the KITTI raw converter modules."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

CONVERTER_VERSION = '1.0.0'
SUBSETS: tuple[str, ...] = ('train', 'val', 'test')
# Monodepth2's side map: 'l'/'2' -> image_02 (left colour), 'r'/'3' -> image_03 (right colour)
SIDE_TO_CAM: dict[str, int] = {'l': 2, 'r': 3, '2': 2, '3': 3}
OTHER_SIDE: dict[str, str] = {'l': 'r', 'r': 'l', '2': '3', '3': '2'}
DATE_RE = re.compile(r'^\d{4}_\d{2}_\d{2}$')
DRIVE_RE = re.compile(r'^(?P<date>\d{4}_\d{2}_\d{2})_drive_(?P<num>\d{4})_sync$')
CALIB_FILES: tuple[str, ...] = ('calib_cam_to_cam.txt', 'calib_velo_to_cam.txt')
IMAGE_EXTS: tuple[str, ...] = ('.png', '.jpg')
VELO_DIR = 'velodyne_points/data'
SPLIT_FILES_URL = 'https://github.com/nianticlabs/monodepth2/tree/master/splits'
GT_DEPTH_TYPES: tuple[str, ...] = ('velo_x', 'cam_z')


def image_dir(cam: int) -> str:
    """``image_0<cam>/data`` (relative to a drive folder)."""
    return f'image_0{cam}/data'


def image_relpath(folder: str, frame: int, cam: int, ext: str) -> str:
    """``<date>/<drive>/image_0<cam>/data/<frame:010d><ext>`` (relative to the raw root)."""
    return f'{folder}/{image_dir(cam)}/{frame:010d}{ext}'


def velodyne_relpath(folder: str, frame: int) -> str:
    """``<date>/<drive>/velodyne_points/data/<frame:010d>.bin`` (relative to the raw root)."""
    return f'{folder}/{VELO_DIR}/{frame:010d}.bin'


def import_pykitti_utils() -> Any:
    """``pykitti.utils`` (the converter's calibration and scan readers), with an install hint."""
    try:
        import pykitti.utils
    except ImportError as e:
        raise ImportError("geo3d's KITTI converter reads drives with pykitti: pip install "
                          "'pykitti==0.3.1' (the geo3d[data] extra)") from e
    return pykitti.utils


class DriveError(Exception):
    """A drive cannot be used: ``path`` is the offending file, ``reason`` says why."""

    def __init__(self, drive: str, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f'{drive}: {path}: {reason}')
        self.drive = drive
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (DriveError, (self.drive, self.path, self.reason))


class InputError(Exception):
    """Bad global input (missing root, split files, drives named by a split): nothing written."""


@dataclass
class ConvertReport:
    """Summary of a :func:`~geo3d.converters.kitti.convert` run.

    ``failed`` holds ``(drive, file, reason)``; ``subsets`` maps subset name to frame count;
    ``gt_exported`` / ``gt_skipped`` count ground-truth files written / found valid;
    ``mask_maps`` / ``masks_exported`` / ``masks_skipped`` the same for the demo drives'
    moving-object masks (``gt_dynamic_masks.npz``).
    """
    split: str = ''
    scanned: int = 0
    skipped: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    subsets: dict[str, int] = field(default_factory=dict)
    drives: dict[str, list[str]] = field(default_factory=dict)
    gt_maps: int = 0
    gt_exported: int = 0
    gt_skipped: int = 0
    mask_maps: int = 0
    masks_exported: int = 0
    masks_skipped: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        subsets = ', '.join(f'{k} {v}' for k, v in self.subsets.items()) or 'none'
        state = 'exported' if self.gt_exported else 'valid, kept'
        gt = f'gt_depths.npz {self.gt_maps} maps ({state})' if self.gt_maps else \
            'no test ground truth'
        if self.mask_maps:
            state = 'exported' if self.masks_exported else 'valid, kept'
            gt += f'; gt_dynamic_masks.npz {self.mask_maps} masks ({state})'
        return (f'kitti[{self.split}]: drives {self.scanned} scanned, {self.skipped} skipped (done '
                f'before), {len(self.failed)} failed; frames: {subsets}; {gt}; '
                f'{self.files_written} files written, {self.files_unchanged} unchanged; '
                f'{self.seconds:.1f} s')
