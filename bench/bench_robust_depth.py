#!/usr/bin/env python
"""RobustDepth vs MonoDepth training-step cost, and the cost of each corruption.

    .venv/bin/python bench/bench_robust_depth.py [--device cpu|cuda] [--size 64x224]
        [--batch 4] [--frames 0 -1 1 s] [--steps 5] [--corruption-batch 12]
        [--corruption-sizes 64x224 192x640] [--skip-corruptions]

Training step (forward + backward + Adam step, random images, ResNet-18s from random init, 4
scales): the two models are timed alternately, step by step, so that a busy machine slows
both alike; the table gives the median wall and process (CPU) time per step and the ratio.
Default: the demo config (configs/robust_depth_kitti_demo.py: 224x64, batch 4, frames
(0, -1, 1, 's')). RobustDepth runs both networks twice (clean and corrupted inputs) plus the
corruption of the target and temporal sources, so its step should cost about 2x.

Corruptions: median wall time of one call on a (B, 3, H, W) batch with depth, per effect at
severity 3 (``--corruption-batch`` images: 12 = batch 4 x 3 corrupted frames).
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from geo3d.datasets.transforms.weather import build_corruption  # noqa: E402
from geo3d.registry import MODELS  # noqa: E402

EFFECTS = ('fog', 'rain', 'snow', 'night', 'dusk', 'motion_blur', 'linear_blur', 'greyscale',
           'channel_drop', 'gaussian_noise', 'rain+fog+night')


def parse_size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split('x'))
    return h, w


def make_batch(b: int, frame_ids: tuple, h: int, w: int, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    color = torch.rand(b, len(frame_ids), 3, h, w, generator=g)
    pyr = [color]
    for s in range(1, 4):
        x = torch.nn.functional.interpolate(color.flatten(0, 1), scale_factor=0.5 ** s,
                                            mode='area')
        pyr.append(x.view(b, len(frame_ids), *x.shape[1:]))
    K = torch.zeros(b, 4, 4, 4)
    for s in range(4):
        f = 2 ** s
        K[:, s] = torch.tensor([[0.58 * w / f, 0, 0.5 * w / f, 0],
                                [0, 1.92 * h / f, 0.5 * h / f, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    stereo = torch.eye(4).repeat(b, 1, 1)
    stereo[:, 0, 3] = -0.1
    out = {'color': pyr, 'color_aug': pyr, 'K': K, 'inv_K': torch.linalg.inv(K),
           'stereo_T': stereo}
    return {k: ([t.to(device) for t in v] if isinstance(v, list) else v.to(device))
            for k, v in out.items()}


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def bench_steps(args: argparse.Namespace) -> None:
    h, w = parse_size(args.size)
    frame_ids = tuple(int(f) if f.lstrip('-').isdigit() else f for f in args.frames)
    inputs = make_batch(args.batch, frame_ids, h, w, args.device)
    models, opts, times = {}, {}, {}
    for name in ('MonoDepth', 'RobustDepth'):
        torch.manual_seed(0)
        models[name] = MODELS.build(dict(type=name, frame_ids=frame_ids)).to(args.device)
        opts[name] = torch.optim.Adam(models[name].parameters(), 1e-4)
        times[name] = ([], [])
    for step in range(args.steps + 1):
        for name, model in models.items():
            sync(args.device)
            t0, c0 = time.perf_counter(), time.process_time()
            loss = model(inputs, None, 'loss')['loss']
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            sync(args.device)
            if step > 0:  # the first step warms up
                times[name][0].append(time.perf_counter() - t0)
                times[name][1].append(time.process_time() - c0)
    print(f'\nTraining step, {args.device}, {w}x{h}, batch {args.batch}, frames {frame_ids}, '
          f'median of {args.steps} (after 1 warm-up), threads {torch.get_num_threads()}')
    print(f'| model | wall s/step | CPU s/step | wall vs MonoDepth |')
    print('|---|---:|---:|---:|')
    base = statistics.median(times['MonoDepth'][0])
    for name, (wall, cpu) in times.items():
        m = statistics.median(wall)
        print(f'| {name} | {m:.3f} | {statistics.median(cpu):.3f} | {m / base:.2f}x |')


def bench_corruptions(args: argparse.Namespace) -> None:
    for size in args.corruption_sizes:
        h, w = parse_size(size)
        g = torch.Generator().manual_seed(0)
        image = torch.rand(args.corruption_batch, 3, h, w, generator=g).to(args.device)
        depth = (3.0 + 60.0 * torch.rand(args.corruption_batch, 1, h, w, generator=g)
                 ).to(args.device)
        print(f'\nCorruptions, {args.device}, batch {args.corruption_batch} x {w}x{h}, '
              f'severity 3, median of 5 calls')
        print('| effect | ms / call |')
        print('|---|---:|')
        for name in EFFECTS:
            corr = build_corruption(name)
            gen = torch.Generator(device=args.device).manual_seed(0)
            corr(image, depth, 3, gen)
            ts = []
            for _ in range(5):
                sync(args.device)
                t0 = time.perf_counter()
                corr(image, depth, 3, gen)
                sync(args.device)
                ts.append(time.perf_counter() - t0)
            print(f'| {name} | {1000 * statistics.median(ts):.1f} |')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--size', default='64x224', help='HEIGHTxWIDTH of the training step')
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--frames', nargs='+', default=['0', '-1', '1', 's'])
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--corruption-batch', type=int, default=12)
    p.add_argument('--corruption-sizes', nargs='+', default=['64x224', '192x640'])
    p.add_argument('--skip-corruptions', action='store_true')
    p.add_argument('--skip-train', action='store_true')
    args = p.parse_args()
    if not args.skip_train:
        bench_steps(args)
    if not args.skip_corruptions:
        bench_corruptions(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
