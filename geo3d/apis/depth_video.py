"""Depth on a video: every frame -> side-by-side ``RGB | coloured disparity`` MP4.

Single-frame models see each frame alone; multi-frame models (ManyDepth, ProDepth) see each
frame with the previous *kept* frame (after ``stride`` subsampling) through
:meth:`DepthPredictor.predict_next`; the first frame falls back to single-frame mode.
With ``compare_single`` a third panel shows the multi-frame model's single-frame teacher.

Colours: Monodepth2's demo maps each frame's minimum .. 95th percentile to the colormap, which
flickers on video (a near car entering moves the 95th percentile and re-colours the whole
scene). :class:`StableColorRange` (the default) follows exponential moving averages of the
per-frame minimum and 95th percentile instead, and colours all panels of a frame with that one
range (same colour = same disparity across panels).
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np
import torch

from .depth_predictor import DepthPredictor, IntrinsicsLike, colorize
from .video import VideoWriter, read_video, video_info

__all__ = ['DepthVideoStats', 'StableColorRange', 'render_depth_video', 'side_by_side']


@dataclass
class DepthVideoStats:
    """What :func:`render_depth_video` did: frames written, wall seconds (decode + predict +
    colour + encode), frames per second (written frames / seconds), the input size (H, W),
    the network size (h, w), whether the model was multi-frame, the temporal stride and the
    number of panels per output frame."""
    frames: int
    seconds: float
    fps: float
    input_size: tuple[int, int]
    network_size: tuple[int, int]
    multi_frame: bool = False
    stride: int = 1
    panels: int = 2


class StableColorRange:
    """A colour range for disparity videos that does not flicker.

    ``vmin`` / ``vmax`` are exponential moving averages of each frame's minimum and
    ``percentile``-th percentile (Monodepth2's per-frame range): ``v <- momentum * v + (1 -
    momentum) * v_frame``, the first frame's values as they are.

    Args:
        momentum: weight of the past in [0, 1); 0 = per-frame normalisation. At 10 fps the
            default 0.9 follows a change within about a second.
        percentile: the upper end's percentile (95, as Monodepth2).
    """

    def __init__(self, momentum: float = 0.9, percentile: float = 95.0) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'StableColorRange: momentum must be in [0, 1), got {momentum}')
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f'StableColorRange: percentile must be in (0, 100], got '
                             f'{percentile}')
        self.momentum = float(momentum)
        self.percentile = float(percentile)
        self.vmin: float | None = None
        self.vmax: float | None = None

    def reset(self) -> None:
        """Forget the history (a new video)."""
        self.vmin = self.vmax = None

    def update(self, disp: np.ndarray) -> tuple[float, float]:
        """Fold one frame's (H, W) disparity in; returns the new (vmin, vmax)."""
        d = np.asarray(disp, np.float32)
        lo, hi = float(d.min()), float(np.percentile(d, self.percentile))
        if self.vmin is None or self.vmax is None:
            self.vmin, self.vmax = lo, hi
        else:
            m = self.momentum
            self.vmin = m * self.vmin + (1 - m) * lo
            self.vmax = m * self.vmax + (1 - m) * hi
        return self.vmin, self.vmax


def side_by_side(rgb: np.ndarray, disp: np.ndarray, cmap: str = 'magma', *,
                 extra: Iterable[np.ndarray] = (), vmin: float | None = None,
                 vmax: float | None = None) -> np.ndarray:
    """``[rgb | colour(disp) | colour(extra[0]) | ...]``.

    Args:
        rgb: (H, W, 3) uint8 frame.
        disp: (H, W) disparity.
        cmap: matplotlib colormap.
        extra: further (H, W) disparities (e.g. the single-frame teacher's).
        vmin, vmax: one colour range for all panels; None: per panel, its min .. 95th
            percentile (Monodepth2).

    Returns:
        (H, (2 + len(extra)) W, 3) uint8.
    """
    panels = [rgb]
    for i, d in enumerate([disp, *extra]):
        if rgb.shape[:2] != d.shape:
            name = 'disparity' if i == 0 else f'extra[{i - 1}]'
            raise ValueError(f'side_by_side: frame {rgb.shape[:2]} and {name} {d.shape} differ')
        panels.append(colorize(d, cmap, vmin=vmin, vmax=vmax))
    return np.concatenate(panels, 1)


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
                       fps: int | Fraction | None = None, stride: int = 1,
                       stable_colors: bool = True, color_momentum: float = 0.9,
                       compare_single: bool = False,
                       intrinsics: IntrinsicsLike | None = None) -> DepthVideoStats:
    """Predict depth on the frames of ``src`` and write ``[frame | coloured disparity]``.

    Args:
        predictor: runs at ``predictor.size``; each frame is resized to it and the disparity
            back to the frame's size. Multi-frame models get the previous kept frame
            (:meth:`DepthPredictor.predict_next`; the stream is reset first).
        src: input video (anything FFmpeg decodes).
        dst: output MP4 (written atomically), 2 (3 with ``compare_single``) times the input
            width; None = predict and colour without encoding (for benchmarks).
        max_frames: stop after this many output frames.
        batch_size: frames per network call (consecutive frames; a multi-frame model still
            matches each against the one before it).
        cmap: matplotlib colormap.
        progress: tqdm progress bar.
        fps: output frame rate; default the input's divided by ``stride``.
        stride: keep every ``stride``-th frame (1, 1 + stride, ...): KITTI-trained
            multi-frame models expect KITTI's ~10 fps motion between frames, e.g. stride 3 for
            a 30 fps video.
        stable_colors: colour with a :class:`StableColorRange` (default); False = per-frame
            min .. 95th percentile (Monodepth2's demo, flickers).
        color_momentum: the :class:`StableColorRange` momentum.
        compare_single: multi-frame models: a third panel with the single-frame teacher's
            disparity (same colour range as the multi-frame panel when ``stable_colors``).
        intrinsics: multi-frame models: normalised intrinsics of this video (see
            :func:`~geo3d.apis.depth_predictor.load_intrinsics`); default the predictor's.

    Returns:
        :class:`DepthVideoStats`.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    if max_frames is not None and max_frames < 1:
        raise ValueError(f'max_frames must be >= 1, got {max_frames}')
    if compare_single and not predictor.multi_frame:
        raise ValueError(f'compare_single needs a multi-frame model (ManyDepth, ProDepth); '
                         f'{type(predictor.model).__name__} is single-frame')
    info = video_info(src)
    total = -(-info.num_frames // stride) if info.num_frames else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    colors = StableColorRange(color_momentum) if stable_colors else None
    frames = itertools.islice(
        read_video(src, max_frames * stride if max_frames is not None else None),
        0, None, stride)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit='frame', desc=os.path.basename(os.fspath(src)))
    writer = VideoWriter(dst, fps or Fraction(info.fps) / stride) if dst is not None else None
    n = 0
    predictor.reset()
    t0 = time.perf_counter()
    try:
        for chunk in _batches(frames, batch_size):
            images = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2)
            disp = predictor.predict_next(images, intrinsics).disp
            single = predictor.predict_teacher(images).disp if compare_single else None
            for i, (rgb, d) in enumerate(zip(chunk, disp)):
                vmin, vmax = colors.update(d) if colors is not None else (None, None)
                extra = (single[i],) if single is not None else ()
                out = side_by_side(rgb, d, cmap, extra=extra, vmin=vmin, vmax=vmax)
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
                           (info.height, info.width), predictor.size, predictor.multi_frame,
                           stride, 3 if compare_single else 2)
