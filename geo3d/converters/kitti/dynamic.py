"""Moving-object masks of the test frames -> ``gt_dynamic_masks.npz`` (demo drives only).

Real KITTI raw has no such masks. geo3d's procedural demo drives
(``geo3d.datasets.demo_street``, ``--moving-objects N``) write, next to the images::

    <date>/<drive>/dynamic_mask_demo/image_0{2,3}/%010d.png   uint8, 255 (non-zero) where an
                                                              independently moving object is seen

For the test lines of a split whose drive has such a folder for the line's camera, the converter
stores the masks in ``splits/<split>/gt_dynamic_masks.npz`` (same order as ``gt_depths.npz`` and
``test_files.txt``), without pickled objects::

    lines    (N,) str          the test lines (zero-padded, as gt_depths.npz)
    present  (N,) bool         the line has a mask (its drive has masks for its camera)
    shapes   (N, 2) int64      (H, W) of each mask, (0, 0) where absent
    offsets  (N + 1,) int64    mask i is masks[offsets[i]:offsets[i + 1]].reshape(shapes[i])
    masks    (sum H*W,) bool   the row-major masks, concatenated; True = moving object
    meta     str               JSON: converter_version, source folder, listing signature

No test line with a mask -> no file. ``geo3d.datasets.kitti.read_gt_dynamic_masks`` reads it
(the reader lives with the dataset, which must not need the converter's dependencies).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .common import CONVERTER_VERSION, DriveError

__all__ = ['DYNAMIC_DIR', 'GT_DYNAMIC_FILE', 'dynamic_mask_relpath', 'has_dynamic_masks',
           'read_dynamic_mask', 'dynamic_signature', 'encode_gt_dynamic_masks',
           'gt_dynamic_masks_valid', 'mask_task']

DYNAMIC_DIR = 'dynamic_mask_demo'
GT_DYNAMIC_FILE = 'gt_dynamic_masks.npz'
_KEYS = {'lines', 'present', 'shapes', 'offsets', 'masks', 'meta'}


def _mask_dir(folder: str, cam: int) -> str:
    return f'{folder}/{DYNAMIC_DIR}/image_0{cam}'


def dynamic_mask_relpath(folder: str, frame: int, cam: int) -> str:
    """``<date>/<drive>/dynamic_mask_demo/image_0<cam>/<frame:010d>.png`` (relative to root)."""
    return f'{_mask_dir(folder, cam)}/{frame:010d}.png'


def has_dynamic_masks(root: str | os.PathLike[str], folder: str, cam: int) -> bool:
    """Whether the drive has a mask folder for camera ``cam``."""
    return (Path(root) / _mask_dir(folder, cam)).is_dir()


def read_dynamic_mask(path: str | os.PathLike[str], size: Sequence[int], drive: str
                      ) -> np.ndarray:
    """(H, W) bool mask (non-zero = moving) of one PNG; ``size`` is the image's (W, H).

    Raises:
        DriveError: missing / unreadable file, not single-channel, or a size other than the
            image's.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode, got = im.mode, im.size
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DriveError(drive, path, 'missing dynamic mask (the drive has masks for this '
                                      'camera but not for this frame)') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DriveError(drive, path, f'corrupt dynamic mask: {e}') from None
    if mode not in ('L', '1', 'P', 'I', 'I;16'):
        raise DriveError(drive, path, f'dynamic mask must be a single-channel image, got mode '
                                      f'{mode}')
    if tuple(got) != tuple(size):
        raise DriveError(drive, path, f'dynamic mask is {got[0]}x{got[1]} but the image is '
                                      f'{size[0]}x{size[1]}')
    return arr != 0


def dynamic_signature(root: str | os.PathLike[str], dirs: Sequence[tuple[str, int]]
                      ) -> dict[str, list[int]]:
    """``[count, total bytes, newest mtime_ns]`` of each (folder, cam) mask folder."""
    sig: dict[str, list[int]] = {}
    for folder, cam in sorted(set(dirs)):
        d = Path(root) / _mask_dir(folder, cam)
        n = size = mtime = 0
        if d.is_dir():
            for entry in os.scandir(d):
                st = entry.stat()
                n, size, mtime = n + 1, size + st.st_size, max(mtime, st.st_mtime_ns)
        sig[_mask_dir(folder, cam)] = [n, size, mtime]
    return sig


def encode_gt_dynamic_masks(lines_text: Sequence[str], masks: Sequence[np.ndarray | None],
                            signature: dict[str, Any]) -> bytes:
    """The ``gt_dynamic_masks.npz`` bytes (layout in the module docstring)."""
    if len(lines_text) != len(masks):
        raise ValueError(f'{len(lines_text)} lines but {len(masks)} masks')
    shapes = np.array([m.shape if m is not None else (0, 0) for m in masks],
                      np.int64).reshape(-1, 2)
    sizes = shapes.prod(1)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = np.concatenate([np.asarray(m, bool).ravel() for m in masks if m is not None]) \
        if any(m is not None for m in masks) else np.zeros(0, bool)
    meta = {'converter_version': CONVERTER_VERSION, 'source': f'{DYNAMIC_DIR}/image_0X',
            'signature': signature,
            'convention': 'True where an independently moving object is seen (demo drives)'}
    buf = io.BytesIO()
    np.savez_compressed(buf, lines=np.array(list(lines_text)),
                        present=np.array([m is not None for m in masks], bool), shapes=shapes,
                        offsets=offsets, masks=flat, meta=np.array(json.dumps(meta)))
    return buf.getvalue()


def gt_dynamic_masks_valid(path: str | os.PathLike[str], lines_text: Sequence[str],
                           signature: dict[str, Any]) -> bool:
    """The file exists, is of this converter version, for these lines and unchanged masks."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not _KEYS <= set(z.files):
                return False
            meta = json.loads(str(z['meta']))
            return (meta.get('converter_version') == CONVERTER_VERSION
                    and meta.get('signature') == json.loads(json.dumps(signature))
                    and z['lines'].tolist() == list(lines_text))
    except (OSError, ValueError, KeyError, EOFError):
        return False


def mask_task(task: tuple[int, str, str, int, int, tuple[int, int]]) -> tuple[str, Any]:
    """Worker: read the mask of one test line -> ('ok', (index, mask)) or ('failed', (drive,
    file, reason))."""
    index, root, folder, frame, cam, size = task
    path = Path(root) / dynamic_mask_relpath(folder, frame, cam)
    try:
        return 'ok', (index, read_dynamic_mask(path, size, folder))
    except DriveError as e:
        return 'failed', (e.drive, e.path, e.reason)
    except Exception as e:  # a bug or resource error must not take the other frames down
        return 'failed', (folder, str(path), f'unexpected {type(e).__name__}: {e}')
