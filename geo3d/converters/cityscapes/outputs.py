"""Per-frame outputs of the Cityscapes converter: ground-truth depth maps and (optionally)
cropped, pre-resized training images. Each is written atomically and skipped on a re-run when
a valid file exists."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from geo3d.utils.io import atomic_save_npy, atomic_write_bytes

from .camera import CityscapesCamera, disparity_to_depth, read_disparity
from .common import crop_height

__all__ = ['IMAGE_FORMATS', 'gt_file_valid', 'write_gt_depth', 'resized_image_valid',
           'write_resized_image']

IMAGE_FORMATS: dict[str, str] = {'jpg': '.jpg', 'png': '.png'}


def gt_file_valid(path: str | os.PathLike[str], shape: tuple[int, int]) -> bool:
    """``path`` is a complete ``.npy`` of float32 with ``shape`` (the header is read, the map
    is memory-mapped, not loaded)."""
    try:
        arr = np.load(path, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return arr.dtype == np.float32 and tuple(arr.shape) == tuple(shape)


def write_gt_depth(disparity_path: str | os.PathLike[str], camera: CityscapesCamera,
                   out_path: str | os.PathLike[str], shape: tuple[int, int]) -> int:
    """Write the (H, W) float32 depth of a disparity map (:func:`~.camera.disparity_to_depth`,
    0 = unknown) to ``out_path`` (``.npy``, atomic).

    Args:
        shape: (H, W) of the frame's image; the disparity map must have it (``fx`` is in its
            pixels).

    Returns:
        the number of pixels with a depth.

    Raises:
        ValueError: naming the disparity file (corrupt, wrong size).
    """
    raw = read_disparity(disparity_path)
    if raw.shape != tuple(shape):
        raise ValueError(f'{disparity_path}: disparity map is {raw.shape[1]}x{raw.shape[0]} but '
                         f'the image is {shape[1]}x{shape[0]}')
    depth = disparity_to_depth(raw, camera.baseline, camera.fx)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(out_path, depth)
    return int(np.count_nonzero(depth))


def resized_image_valid(path: str | os.PathLike[str], size: tuple[int, int]) -> bool:
    """``path`` is a readable image of ``size`` = (W, H) (header only)."""
    try:
        with Image.open(path) as im:
            return tuple(im.size) == tuple(size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def write_resized_image(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                        size: tuple[int, int], crop_bottom: float, image_format: str = 'jpg',
                        jpeg_quality: int = 95) -> None:
    """Cut the bottom ``crop_bottom`` of ``src``, resize it to ``size`` = (W, H) with PIL's
    Lanczos filter and write it to ``dst`` (atomic) as JPEG (``jpeg_quality``) or PNG.

    SfMLearner's ``prepare_train_data.py`` stores Cityscapes the same way (1024x384 after the
    crop); the dataset then resizes to the training size as from the raw frames.

    Raises:
        ValueError: naming ``src`` when it cannot be decoded.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f'image_format must be one of {sorted(IMAGE_FORMATS)}, got '
                         f'{image_format!r}')
    try:
        with Image.open(src) as im:
            im = im.convert('RGB')
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f'{src}: corrupt image: {e}') from None
    w, h = im.size
    im = im.crop((0, 0, w, crop_height(h, crop_bottom))).resize(tuple(size), Image.LANCZOS)
    buf = io.BytesIO()
    if image_format == 'jpg':
        im.save(buf, format='JPEG', quality=int(jpeg_quality))
    else:
        im.save(buf, format='PNG')
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, buf.getvalue(), fsync=False)
