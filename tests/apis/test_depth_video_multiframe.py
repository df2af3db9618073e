"""render_depth_video with multi-frame models, temporal stride, teacher panel, stable colours."""
from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from geo3d.apis import DepthPredictor, colorize, render_depth_video, side_by_side
from geo3d.apis.depth_video import StableColorRange
from geo3d.apis.video import VideoWriter, read_video, video_info
from tests.apis.test_depth_predictor_multiframe import (config_file, save_checkpoint, textured,
                                                        tiny_multiframe)

VH, VW = 70, 110  # video size (the network runs at 64x96)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope='module')
def multi(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('video')
    model = tiny_multiframe()
    return DepthPredictor(config_file(tmp), save_checkpoint(model, tmp / 'many.pth'))


def write_video(path, n: int, fps: int = 10) -> None:
    """A camera panning right over a smooth texture, 1 pixel per frame (at most 8 frames)."""
    with VideoWriter(path, fps=fps) as w:
        for i in range(n):
            w.write(textured(VH, VW, seed=5, shift=i))


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_multi_frame_video_with_stride_and_teacher_panel(multi, tmp_path):
    src, dst = tmp_path / 'in.mp4', tmp_path / 'out.mp4'
    write_video(src, 7)
    stats = render_depth_video(multi, src, dst, batch_size=2, stride=2, compare_single=True,
                               progress=False)
    assert (stats.frames, stats.stride, stats.panels, stats.multi_frame) == (4, 2, 3, True)
    assert video_info(dst).fps == Fraction(5)  # 10 fps / stride 2
    out = list(read_video(dst))
    assert len(out) == 4 and out[0].shape == (VH, 3 * VW, 3)
    # what it should show: frames 0, 2, 4, 6 streamed through the model (each matched
    # against the previous kept frame), coloured with the moving-average range
    kept = list(read_video(src))[::2]
    expected = list(multi.stream(kept))
    colors = StableColorRange(0.9)
    for i, (frame, pred) in enumerate(zip(kept, expected)):
        vmin, vmax = colors.update(pred.disp)
        want = side_by_side(frame, pred.disp, extra=[multi.predict_teacher(frame).disp],
                            vmin=vmin, vmax=vmax)
        for panel in range(3):  # up to the codec (small, noisy colour maps: ~11 levels)
            cols = slice(panel * VW, (panel + 1) * VW)
            assert mean_abs(out[i][:, cols], want[:, cols]) < 16, (i, panel)
        if i:  # matched against the previous kept frame, not the single-frame fallback
            fallback = colorize(multi.predict(frame).disp, vmin=vmin, vmax=vmax)
            got = out[i][:, VW:2 * VW]
            assert mean_abs(got, want[:, VW:2 * VW]) < 0.5 * mean_abs(got, fallback), i


def test_two_panels_max_frames_and_errors(multi, tmp_path):
    src = tmp_path / 'in.mp4'
    write_video(src, 5)
    stats = render_depth_video(multi, src, tmp_path / 'out.mp4', max_frames=2, progress=False,
                               stable_colors=False)
    assert (stats.frames, stats.panels) == (2, 2)
    out = list(read_video(tmp_path / 'out.mp4'))
    assert len(out) == 2 and out[0].shape == (VH, 2 * VW, 3)
    with pytest.raises(ValueError, match='stride must be >= 1'):
        render_depth_video(multi, src, None, stride=0, progress=False)
    mono = SimpleNamespace(multi_frame=False, model=torch.nn.Identity())
    with pytest.raises(ValueError, match='compare_single needs a multi-frame model'):
        render_depth_video(mono, src, None, compare_single=True, progress=False)


def test_stable_color_range_is_an_exponential_moving_average():
    g = np.random.default_rng(0)
    maps = [g.random((20, 30)).astype(np.float32) * (1 + i) for i in range(3)]
    r = StableColorRange(momentum=0.8, percentile=90)
    lo, hi = maps[0].min(), np.percentile(maps[0], 90)
    assert r.update(maps[0]) == pytest.approx((lo, hi))
    for m in maps[1:]:
        lo = 0.8 * lo + 0.2 * m.min()
        hi = 0.8 * hi + 0.2 * np.percentile(m, 90)
        assert r.update(m) == pytest.approx((lo, hi), rel=1e-6)
    per_frame = StableColorRange(momentum=0.0)
    for m in maps:
        assert per_frame.update(m) == pytest.approx((m.min(), np.percentile(m, 95)))
    r.reset()
    assert r.vmin is None and r.vmax is None
    with pytest.raises(ValueError, match=r'momentum must be in \[0, 1\)'):
        StableColorRange(momentum=1.0)
    with pytest.raises(ValueError, match=r'extra\[0\] \(5, 5\) differ'):
        side_by_side(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4)), extra=[np.zeros((5, 5))])


class FlickeringPredictor:
    """A stand-in predictor: a static scene (disparity ramp, far at the top) where a near
    object covers 8 % of the frame on every other frame, the kind of change that moves the
    per-frame 95th percentile and re-colours the whole scene."""

    multi_frame = False
    size = (64, 96)

    def __init__(self) -> None:
        self.t = 0

    def reset(self) -> None:
        self.t = 0

    def predict_next(self, images: torch.Tensor, intrinsics=None) -> SimpleNamespace:
        disps = []
        for _ in range(images.shape[0]):
            h, w = images.shape[-2:]
            d = np.repeat(np.linspace(0.1, 1.0, h, dtype=np.float32)[:, None], w, 1)
            if self.t % 2:
                d[:, : int(0.08 * w)] = 5.0  # the near object at the left edge
            disps.append(d)
            self.t += 1
        return SimpleNamespace(disp=np.stack(disps))


def test_stable_colours_flicker_less_than_per_frame_normalisation(tmp_path):
    src = tmp_path / 'in.mp4'
    write_video(src, 8)
    changes = {}
    for stable in (True, False):
        dst = tmp_path / f'out_{stable}.mp4'
        render_depth_video(FlickeringPredictor(), src, dst, stable_colors=stable,
                           progress=False)
        out = list(read_video(dst))
        background = [f[:, VW + int(0.1 * VW):] for f in out]  # depth panel, object excluded
        # frame-to-frame colour change of the static background once the average settled
        changes[stable] = np.mean([mean_abs(a, b) for a, b in zip(background[4:],
                                                                  background[5:])])
    assert changes[False] > 10, changes  # per-frame normalisation flickers ...
    assert changes[True] < 0.3 * changes[False], changes  # ... the moving average far less
