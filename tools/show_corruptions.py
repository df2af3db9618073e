#!/usr/bin/env python
"""A PNG grid of corruptions of one image: rows = effects, columns = clean + severities.

Usage (from the repo root)::

    python tools/show_corruptions.py --image FRAME.png [--depth DEPTH.png|DEPTH.npy]
        [--corruptions fog rain snow ...] [--severities 1 3 5] [--seed 0] [--width 416]
        [--colors 128] --out grid.png

``--depth`` is the frame's depth in metres: a 16-bit PNG of metres x 256 (KITTI's depth
format, e.g. the demo drives' ``proj_depth_demo/image_02/*.png``) or a ``.npy`` (H, W) array;
fog, rain and snow need it. ``--width`` resizes the image (and depth) first.
"""
from __future__ import annotations

import argparse
import io
import os
import os.path as osp
import sys
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from geo3d.datasets.transforms.weather import build_corruption  # noqa: E402
from geo3d.utils.io import atomic_write_bytes  # noqa: E402

DEFAULT_CORRUPTIONS = ('fog', 'rain', 'snow', 'night', 'dusk', 'motion_blur', 'linear_blur',
                       'greyscale', 'channel_drop', 'gaussian_noise', 'rain+fog+night')
LABEL_W = 110


def load_depth(path: str) -> np.ndarray:
    """(H, W) float32 metres from a uint16 PNG (m x 256) or a .npy file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--depth: {path} does not exist')
    if path.endswith('.npy'):
        d = np.load(path)
    else:
        with Image.open(path) as im:
            arr = np.asarray(im)
        if arr.dtype not in (np.uint16, np.int32):
            raise ValueError(f'--depth: {path} must be a 16-bit PNG of metres x 256, got '
                             f'dtype {arr.dtype}')
        d = arr.astype(np.float32) / 256.0
    if d.ndim != 2:
        raise ValueError(f'--depth: {path} must hold one (H, W) map, got shape {d.shape}')
    return d.astype(np.float32)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Grid of corruptions of one image')
    p.add_argument('--image', required=True, help='RGB image')
    p.add_argument('--depth', default=None, help='depth (16-bit PNG m*256 or .npy metres)')
    p.add_argument('--corruptions', nargs='+', default=list(DEFAULT_CORRUPTIONS),
                   help='effects (short names, + combines)')
    p.add_argument('--severities', nargs='+', type=int, default=[1, 3, 5])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--width', type=int, default=None, help='resize the image to this width')
    p.add_argument('--colors', type=int, default=None,
                   help='quantize the grid to this many colours (smaller PNG, e.g. 128)')
    p.add_argument('--out', required=True, help='output PNG')
    return p


def render_grid(image: torch.Tensor, depth: torch.Tensor | None, names: Sequence[str],
                severities: Sequence[int], seed: int) -> Image.Image:
    """image (1, 3, H, W), depth (1, 1, H, W) or None -> the labelled grid."""
    _, _, h, w = image.shape
    cols = 1 + len(severities)
    grid = Image.new('RGB', (LABEL_W + cols * w, 14 + len(names) * h), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(['clean'] + [f'severity {s}' for s in severities]):
        draw.text((LABEL_W + j * w + 4, 1), title, fill=(0, 0, 0))
    to_pil = (lambda t: Image.fromarray(
        (t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)))
    for i, name in enumerate(names):
        corr = build_corruption(name)
        y = 14 + i * h
        draw.text((4, y + h // 2 - 6), name, fill=(0, 0, 0))
        grid.paste(to_pil(image), (LABEL_W, y))
        for j, s in enumerate(severities):
            g = torch.Generator().manual_seed(seed)
            out = corr(image, depth, s, g)
            grid.paste(to_pil(out), (LABEL_W + (j + 1) * w, y))
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not osp.isfile(args.image):
            raise FileNotFoundError(f'--image: {args.image} does not exist')
        with Image.open(args.image) as im:
            rgb = np.asarray(im.convert('RGB'), dtype=np.float32) / 255.0
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
        depth = None
        if args.depth:
            d = load_depth(args.depth)
            if d.shape != rgb.shape[:2]:
                raise ValueError(f'--depth: {args.depth} is {d.shape[1]}x{d.shape[0]}, the '
                                 f'image {rgb.shape[1]}x{rgb.shape[0]}')
            depth = torch.from_numpy(d)[None, None]
        if args.width:
            h = int(round(image.shape[2] * args.width / image.shape[3]))
            image = F.interpolate(image, (h, args.width), mode='bilinear', antialias=True,
                                  align_corners=False).clamp(0, 1)
            if depth is not None:
                depth = F.interpolate(depth, (h, args.width), mode='nearest')
        needs = [n for n in args.corruptions if build_corruption(n).needs_depth]
        if needs and depth is None:
            raise ValueError(f'{", ".join(needs)} need --depth (metres)')
        grid = render_grid(image, depth, args.corruptions, args.severities, args.seed)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.colors:
        grid = grid.quantize(args.colors)
    buf = io.BytesIO()
    grid.save(buf, format='PNG', optimize=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    atomic_write_bytes(args.out, buf.getvalue(), fsync=False)
    print(f'wrote {args.out} ({len(args.corruptions)} effects x {len(args.severities)} '
          f'severities, {grid.width}x{grid.height})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
