#!/usr/bin/env python
"""Depth on a video: ``RGB | coloured depth`` side by side, written as an MP4.

Usage (from the repo root)::

    python tools/demo_depth_video.py CONFIG CHECKPOINT --video IN.mp4 [--out OUT.mp4]
        [--device cpu|cuda] [--size 640x192|native] [--max-frames N] [--batch-size B]
        [--stride S] [--intrinsics K.json] [--compare-single] [--per-frame-colors]
        [--color-momentum 0.9] [--cmap magma] [--no-progress]

CONFIG gives the model and its training size; CHECKPOINT comes from tools/train.py or
tools/convert_depth_weights.py (pass ``none`` as CONFIG for a converted checkpoint, whose meta
holds the networks). ``--size WxH`` runs the network at another size (divisible by 32),
``native`` at the video's size rounded to multiples of 32. Brighter = nearer (disparity).

Single-frame models (MonoDepth, RobustDepth) predict every frame alone. Multi-frame models
(ManyDepth, ProDepth) match every frame against the previous one written (the first frame
runs in single-frame mode); they need the camera's normalised intrinsics (``--intrinsics``: a
JSON 3x3 matrix as ManyDepth's test_sequence_intrinsics.json; default KITTI's) and KITTI's
~10 fps motion: ``--stride 3`` keeps every third frame of a 30 fps video (the output has
fps / stride). ``--compare-single`` adds a third panel with the multi-frame model's
single-frame teacher. Colours follow a moving average of the per-frame minimum and 95th
percentile (``--color-momentum``); ``--per-frame-colors`` normalises every frame on its own as
Monodepth2's demo (flickers). Default OUT: ``<IN stem>_depth.mp4`` next to the input.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from geo3d.apis import DepthPredictor, render_depth_video, round_size, video_info  # noqa: E402


def parse_size(text: str) -> tuple[int, int] | str:
    """'640x192' -> (192, 640) (height, width); 'native' stays."""
    if text == 'native':
        return text
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WIDTHxHEIGHT (e.g. 640x192) or "
                                         f"'native', got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f'--size must be positive, got {text!r}')
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Depth on a video (side-by-side MP4)')
    p.add_argument('config', help="config file, or 'none' for a converted checkpoint")
    p.add_argument('checkpoint', help='checkpoint (.pth)')
    p.add_argument('--video', required=True, help='input video')
    p.add_argument('--out', default=None, help='output MP4 (default <input>_depth.mp4)')
    p.add_argument('--device', default='cpu', help="torch device, e.g. cpu, cuda (default cpu)")
    p.add_argument('--size', type=parse_size, default=None,
                   help="network input WIDTHxHEIGHT, or 'native' (default: the training size)")
    p.add_argument('--max-frames', type=int, default=None, help='stop after N frames')
    p.add_argument('--batch-size', type=int, default=1, help='frames per network call')
    p.add_argument('--stride', type=int, default=1,
                   help='keep every S-th frame (KITTI models expect ~10 fps; default 1)')
    p.add_argument('--intrinsics', default=None,
                   help='multi-frame models: JSON file with the normalised 3x3 intrinsics '
                        '(fx/W, fy/H, cx/W, cy/H); default KITTI\'s')
    p.add_argument('--compare-single', action='store_true',
                   help='multi-frame models: third panel with the single-frame teacher')
    p.add_argument('--per-frame-colors', action='store_true',
                   help='colour range per frame (Monodepth2; flickers) instead of a moving '
                        'average')
    p.add_argument('--color-momentum', type=float, default=0.9,
                   help='moving-average momentum of the colour range, in [0, 1) (default 0.9)')
    p.add_argument('--cmap', default='magma', help='matplotlib colormap (default magma)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        parser.error('--max-frames must be >= 1')
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    if args.stride < 1:
        parser.error('--stride must be >= 1')
    if not 0.0 <= args.color_momentum < 1.0:
        parser.error('--color-momentum must be in [0, 1)')
    out = args.out or osp.splitext(args.video)[0] + '_depth.mp4'
    if osp.abspath(out) == osp.abspath(args.video):
        parser.error('--out must differ from --video')
    try:
        info = video_info(args.video)
        size = args.size
        if size == 'native':
            size = round_size(info.height, info.width)
        config = None if args.config.lower() == 'none' else args.config
        predictor = DepthPredictor(config, args.checkpoint, device=args.device, size=size,
                                   intrinsics=args.intrinsics)
        if args.compare_single and not predictor.multi_frame:
            parser.error(f'--compare-single needs a multi-frame model (ManyDepth, ProDepth); '
                         f'{type(predictor.model).__name__} is single-frame')
        stats = render_depth_video(predictor, args.video, out, max_frames=args.max_frames,
                                   batch_size=args.batch_size, cmap=args.cmap,
                                   progress=not args.no_progress, stride=args.stride,
                                   stable_colors=not args.per_frame_colors,
                                   color_momentum=args.color_momentum,
                                   compare_single=args.compare_single)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    h, w = stats.network_size
    kind = 'multi-frame' if stats.multi_frame else 'single-frame'
    print(f'{stats.frames} frames ({stats.input_size[1]}x{stats.input_size[0]}, network '
          f'{w}x{h}, {args.device}, {kind} {type(predictor.model).__name__}, stride '
          f'{stats.stride}) in {stats.seconds:.1f} s = {stats.fps:.1f} FPS -> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
