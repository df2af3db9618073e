#!/usr/bin/env python
"""Cityscapes converter and data-loading cost, raw 2048x1024 PNGs vs pre-resized frames.

    .venv/bin/python bench/bench_cityscapes_io.py [--snippets 2] [--frames 9] [--samples 10]

Writes a synthetic Cityscapes tree in the real layout (``tests/helpers/cityscapes_fixture.py``
at the real 2048x1024 size, frames filled with smooth random texture so the PNGs compress like
photographs, ~3-4 MB each) into a temporary folder, then times:

* ``convert`` (``--workers 1``): scanning (image headers, camera JSONs) and writing the test
  ground truth (one 1024x2048 float32 map per annotated test frame);
* ``convert --resize 1024x384`` (JPEG q95 and PNG): cropping + resizing every used frame;
* ``CityscapesSequenceDataset.__getitem__`` in training mode (512x192, frames (0, -1, 1), 4
  scales, flip + colour jitter), median over ``--samples`` calls, reading the raw PNGs (crop on
  the fly) vs the pre-resized images.

All single-threaded (``torch.set_num_threads(1)``), as one dataloader worker would run.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from geo3d.converters.cityscapes import convert  # noqa: E402
from geo3d.registry import DATASETS  # noqa: E402
from tests.helpers.cityscapes_fixture import write_cityscapes  # noqa: E402


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 smooth random texture plus fine noise (PNG size close to a photo's)."""
    small = rng.uniform(0, 255, (h // 16, w // 16, 3)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.int16)
    return np.clip(big + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8)


def _retexture(root: Path, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    n = 0
    for p in sorted(root.glob('leftImg8bit_sequence/*/*/*.png')):
        Image.fromarray(_texture(rng, 1024, 2048)).save(p)
        n += 1
    return n


def _time_items(ds, n: int) -> float:
    ds[0]  # warm-up
    times = []
    for i in range(n):
        t = time.perf_counter()
        ds[i % len(ds)]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--snippets', type=int, default=2, help='train snippets (one test snippet)')
    ap.add_argument('--frames', type=int, default=9, help='frames per snippet (around 19)')
    ap.add_argument('--samples', type=int, default=10, help='__getitem__ calls timed')
    args = ap.parse_args()
    torch.set_num_threads(1)
    first = 19 - args.frames // 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cs = write_cityscapes(tmp / 'cs', {'train': {'aachen': tuple(range(args.snippets))},
                                           'test': {'berlin': (0,)}},
                              frames=range(first, first + args.frames), height=1024,
                              width=2048)
        n_img = _retexture(cs.root)
        mb = sum(p.stat().st_size for p in cs.root.rglob('*.png')) / 2 ** 20
        rows = []
        t = time.perf_counter()
        rep = convert(cs.root, tmp / 'raw', val_fraction=0.0, progress=False, verbose=False)
        rows.append(('convert (scan + gt)', time.perf_counter() - t,
                     f'{rep.scanned} cities, {n_img} frames, {rep.gt_exported} gt maps'))
        t = time.perf_counter()
        rep2 = convert(cs.root, tmp / 'raw', val_fraction=0.0, progress=False, verbose=False)
        rows.append(('convert again (resume)', time.perf_counter() - t,
                     f'{rep2.skipped} cities skipped, {rep2.gt_skipped} gt kept'))
        for fmt in ('jpg', 'png'):
            t = time.perf_counter()
            rep = convert(cs.root, tmp / fmt, val_fraction=0.0, resize=(1024, 384),
                          image_format=fmt, progress=False, verbose=False)
            dt = time.perf_counter() - t
            rows.append((f'convert --resize 1024x384 {fmt}', dt,
                         f'{rep.images_written} images, {1e3 * dt / rep.images_written:.0f} '
                         'ms/image incl. scan'))
        print(f'\nsynthetic tree: {n_img} frames 2048x1024, {mb:.0f} MiB of PNG\n')
        print(f'| {"step":<32} | {"seconds":>8} | note')
        print(f'|{"-" * 34}|{"-" * 10}|{"-" * 40}')
        for name, sec, note in rows:
            print(f'| {name:<32} | {sec:8.2f} | {note}')
        print(f'\n| {"__getitem__ (train, 512x192, 3 frames)":<42} | {"ms":>8}')
        print(f'|{"-" * 44}|{"-" * 10}')
        for label, out in (('raw PNG 2048x1024 (crop on the fly)', 'raw'),
                           ('pre-resized JPEG 1024x384', 'jpg'),
                           ('pre-resized PNG 1024x384', 'png')):
            ds = DATASETS.build(dict(type='CityscapesSequenceDataset', data_root=str(tmp / out),
                                     ann_file='splits/auto/train_info.json', height=192,
                                     width=512, serialize_data=False))
            print(f'| {label:<42} | {1e3 * _time_items(ds, args.samples):8.1f}')


if __name__ == '__main__':
    main()
