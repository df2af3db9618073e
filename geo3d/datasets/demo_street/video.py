"""Encode frames into an MP4 video with PyAV (H.264 when the FFmpeg build has libx264, else
MPEG-4 part 2), written atomically."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from geo3d.utils.io import tmp_name

__all__ = ['write_video', 'pick_codec']


def pick_codec() -> str:
    """'libx264' if PyAV's FFmpeg has it, else 'mpeg4'."""
    import av
    return 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: int = 10,
                codec: str | None = None) -> int:
    """Write RGB frames (each (H, W, 3) uint8, all the same size) to ``path`` (.mp4).

    Odd sizes are padded by one edge row / column (yuv420p needs even sizes). Returns the
    number of frames written. Raises ImportError with an install hint when PyAV is missing,
    ValueError on an empty sequence or mismatched frame sizes.
    """
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is installed in the dev environment
        raise ImportError('write_video needs PyAV: pip install av (geo3d extra [video])') from e
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)  # the container format is given explicitly, not by the suffix
    codec = codec or pick_codec()
    n = 0
    size = None
    try:
        with av.open(str(tmp), mode='w', format='mp4') as container:
            stream = None
            for img in frames:
                img = np.asarray(img)
                if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                    raise ValueError(f'write_video({path}): frame {n} must be uint8 (H, W, 3), '
                                     f'got {img.dtype} {img.shape}')
                if size is None:
                    size = img.shape[:2]
                    stream = container.add_stream(codec, rate=fps)
                    stream.height = size[0] + size[0] % 2
                    stream.width = size[1] + size[1] % 2
                    stream.pix_fmt = 'yuv420p'
                    if codec == 'libx264':
                        stream.options = {'crf': '18', 'preset': 'medium'}
                    else:
                        stream.bit_rate = 4_000_000
                elif img.shape[:2] != size:
                    raise ValueError(f'write_video({path}): frame {n} is {img.shape[:2]}, the '
                                     f'first frame was {size}')
                img = np.pad(img, ((0, size[0] % 2), (0, size[1] % 2), (0, 0)), mode='edge')
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format='rgb24')
                for packet in stream.encode(frame):
                    container.mux(packet)
                n += 1
            if stream is None:
                raise ValueError(f'write_video({path}): no frames')
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return n
