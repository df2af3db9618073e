"""Depth on a video: every frame -> side-by-side ``RGB | coloured disparity`` MP4."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np
import torch

from .depth_predictor import DepthPredictor, colorize
from .video import VideoWriter, read_video, video_info

__all__ = ['DepthVideoStats', 'render_depth_video', 'side_by_side']


@dataclass
class DepthVideoStats:
    """What :func:`render_depth_video` did: frames, wall seconds (decode + predict + colour +
    encode), frames per second, the input size (H, W) and the network size (h, w)."""
    frames: int
    seconds: float
    fps: float
    input_size: tuple[int, int]
    network_size: tuple[int, int]


def side_by_side(rgb: np.ndarray, disp: np.ndarray, cmap: str = 'magma') -> np.ndarray:
    """(H, W, 3) uint8 frame and (H, W) disparity -> (H, 2 W, 3) uint8 ``[rgb | colour]``."""
    if rgb.shape[:2] != disp.shape:
        raise ValueError(f'side_by_side: frame {rgb.shape[:2]} and disparity {disp.shape} differ')
    return np.concatenate([rgb, colorize(disp, cmap)], 1)


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for f in frames:
        chunk.append(f)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def render_depth_video(predictor: DepthPredictor, src: str | os.PathLike[str],
                       dst: str | os.PathLike[str] | None, max_frames: int | None = None,
                       batch_size: int = 1, cmap: str = 'magma', progress: bool = True,
                       fps: int | Fraction | None = None) -> DepthVideoStats:
    """Predict depth on every frame of ``src`` and write ``[frame | coloured disparity]``.

    Args:
        predictor: runs at ``predictor.size``; each frame is resized to it and the disparity
            back to the frame's size.
        src: input video (anything FFmpeg decodes).
        dst: output MP4 (written atomically), twice the input width; None = predict and colour
            without encoding (for benchmarks).
        max_frames: stop after this many frames.
        batch_size: frames per network call.
        cmap: matplotlib colormap; per-frame range min .. 95th percentile (Monodepth2).
        progress: tqdm progress bar.
        fps: output frame rate; default the input's.

    Returns:
        :class:`DepthVideoStats`.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    info = video_info(src)
    total = info.num_frames or None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame', desc=os.path.basename(os.fspath(src)))
    writer = VideoWriter(dst, fps or info.fps) if dst is not None else None
    n = 0
    t0 = time.perf_counter()
    try:
        for chunk in _batches(read_video(src, max_frames), batch_size):
            images = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2)
            disp = predictor.predict(images).disp
            for rgb, d in zip(chunk, disp):
                out = side_by_side(rgb, d, cmap)
                if writer is not None:
                    writer.write(out)
            n += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if n == 0:
        raise ValueError(f'{os.fspath(src)}: no frames decoded')
    return DepthVideoStats(n, seconds, n / seconds if seconds > 0 else float('inf'),
                           (info.height, info.width), predictor.size)
