#!/usr/bin/env python
"""Depth on a video: ``RGB | coloured depth`` side by side, written as an MP4.

Usage (from the repo root)::

    python tools/demo_depth_video.py CONFIG CHECKPOINT --video IN.mp4 [--out OUT.mp4]
        [--device cpu|cuda] [--size 640x192|native] [--max-frames N] [--batch-size B]
        [--cmap magma] [--no-progress]

CONFIG gives the model and its training size; CHECKPOINT comes from tools/train.py or
tools/convert_depth_weights.py (pass ``none`` as CONFIG for a converted checkpoint, whose meta
holds the networks). ``--size WxH`` runs the network at another size (divisible by 32),
``native`` at the video's size rounded to multiples of 32. Brighter = nearer (disparity,
coloured per frame from its minimum to its 95th percentile, as Monodepth2's demo).
Default OUT: ``<IN stem>_depth.mp4`` next to the input.
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
    out = args.out or osp.splitext(args.video)[0] + '_depth.mp4'
    if osp.abspath(out) == osp.abspath(args.video):
        parser.error('--out must differ from --video')
    try:
        info = video_info(args.video)
        size = args.size
        if size == 'native':
            size = round_size(info.height, info.width)
        config = None if args.config.lower() == 'none' else args.config
        predictor = DepthPredictor(config, args.checkpoint, device=args.device, size=size)
        stats = render_depth_video(predictor, args.video, out, max_frames=args.max_frames,
                                   batch_size=args.batch_size, cmap=args.cmap,
                                   progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    h, w = stats.network_size
    print(f'{stats.frames} frames ({stats.input_size[1]}x{stats.input_size[0]}, network '
          f'{w}x{h}, {args.device}) in {stats.seconds:.1f} s = {stats.fps:.1f} FPS -> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
