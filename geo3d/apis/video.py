"""Streaming video reading and (atomic) MP4 writing with PyAV, frame by frame.

Frames are (H, W, 3) uint8 RGB numpy arrays. :class:`VideoWriter` encodes into a temporary
file next to the destination and renames it into place on a clean close, so an interrupted
run never leaves a truncated MP4 under the final name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator

import numpy as np

from geo3d.utils.io import fsync_dir, tmp_name

__all__ = ['VideoInfo', 'video_info', 'read_video', 'VideoWriter', 'pick_codec']


def _av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - av is a dependency of the [video] extra
        raise ImportError('video input/output needs PyAV: pip install av (geo3d extra '
                          '[video])') from err
    return av


@dataclass(frozen=True)
class VideoInfo:
    """Size, frame rate and (container-reported, possibly 0 = unknown) frame count."""
    width: int
    height: int
    fps: Fraction
    num_frames: int


def _open(path: str | os.PathLike[str]):
    av = _av()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'video {path} does not exist')
    try:
        container = av.open(path)
    except av.FFmpegError as err:
        raise ValueError(f'{path}: not a readable video ({err})') from err
    if not container.streams.video:
        container.close()
        raise ValueError(f'{path}: has no video stream')
    return container


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """:class:`VideoInfo` of the first video stream of ``path``."""
    with _open(path) as container:
        s = container.streams.video[0]
        fps = s.average_rate or s.base_rate or Fraction(10)
        return VideoInfo(int(s.codec_context.width), int(s.codec_context.height),
                         Fraction(fps), int(s.frames or 0))


def read_video(path: str | os.PathLike[str], max_frames: int | None = None
               ) -> Iterator[np.ndarray]:
    """Decode the first video stream: yields (H, W, 3) uint8 RGB frames, at most
    ``max_frames``."""
    if max_frames is not None and max_frames < 0:
        raise ValueError(f'max_frames must be >= 0, got {max_frames}')
    av = _av()
    with _open(path) as container:
        if max_frames == 0:
            return
        n = 0
        try:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format='rgb24')
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except av.FFmpegError as err:
            raise ValueError(f'{os.fspath(path)}: decoding failed after {n} frames '
                             f'({err})') from err


def pick_codec() -> str:
    """'libx264' when PyAV's FFmpeg has it, else 'mpeg4'."""
    return 'libx264' if 'libx264' in _av().codecs_available else 'mpeg4'


class VideoWriter:
    """Write RGB frames into an MP4, atomically (use as a context manager).

    Args:
        path: destination ``.mp4``.
        fps: frame rate (int or Fraction).
        codec: FFmpeg encoder; default :func:`pick_codec`.
        crf: quality for libx264 (lower = better); mpeg4 uses a fixed high bit rate.

    The size is fixed by the first frame; odd sizes are padded by one edge row / column
    (yuv420p needs even sizes). ``frames_written`` counts the frames.
    """

    def __init__(self, path: str | os.PathLike[str], fps: int | Fraction = 10,
                 codec: str | None = None, crf: int = 18) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        if self.fps <= 0:
            raise ValueError(f'VideoWriter({self.path}): fps must be > 0, got {fps}')
        self.codec = codec or pick_codec()
        self.crf = crf
        self.frames_written = 0
        self._tmp = tmp_name(self.path)  # format given explicitly: no .mp4 suffix needed
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        av = _av()
        img = np.asarray(frame)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f'VideoWriter({self.path}): frame {self.frames_written} must be '
                             f'uint8 (H, W, 3), got {img.dtype} {img.shape}')
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = img.shape[:2]
            self._container = av.open(str(self._tmp), mode='w', format='mp4')
            s = self._container.add_stream(self.codec, rate=self.fps)
            s.height, s.width = self._size[0] + self._size[0] % 2, self._size[1] + self._size[1] % 2
            s.pix_fmt = 'yuv420p'
            if self.codec == 'libx264':
                s.options = {'crf': str(self.crf), 'preset': 'veryfast'}
            else:
                s.bit_rate = 8_000_000
            self._stream = s
        elif img.shape[:2] != self._size:
            raise ValueError(f'VideoWriter({self.path}): frame {self.frames_written} is '
                             f'{img.shape[:2]}, the first was {self._size}')
        if img.shape[0] % 2 or img.shape[1] % 2:
            img = np.pad(img, ((0, img.shape[0] % 2), (0, img.shape[1] % 2), (0, 0)),
                         mode='edge')
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(img, format='rgb24')):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the file into place (nothing written: no file)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop the partial output."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 (the file is removed anyway)
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
