#!/usr/bin/env python
"""PlaneSweepCostVolume and ProDepth's PCVM: time and peak memory.

    .venv/bin/python bench/bench_cost_volume.py [--devices cpu cuda] [--batch-cpu 4]
        [--batch-cuda 12] [--size 48 160] [--channels 64] [--repeats 3]

One lookup frame, features (B, C, h, w) at 1/4 of Monodepth2's 640x192 input (160x48), KITTI
intrinsics, a forward motion of 0.5 depth units. Rows: ManyDepth's 96 linear bins and
ProDepth's 128 log bins. ``fwd`` = cost volume under ``torch.no_grad()`` (as ManyDepth builds
it), ``fwd+bwd`` = with gradients to the target features and a backward pass, ``pcvm`` =
PCVM on the volume (no gradients). Times are medians over ``repeats`` after one warm-up call.
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above the inputs; on CPU the process
RSS sampled every 2 ms above the RSS before the call (an estimate, counts allocator slack).
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
from typing import Any, Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402

from bench_spunet import _RssPeak as RssPeak  # noqa: E402  (one RSS sampler for all benches)
from bench_spunet import _timed  # noqa: E402
from geo3d.models.depth import (PlaneSweepCostVolume,  # noqa: E402
                                ProbabilisticCostVolumeModulation)

CONFIGS = (('ManyDepth', 96, 'linear'), ('ProDepth', 128, 'log'))


def inputs(batch: int, channels: int, h: int, w: int, device: str) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    K = torch.eye(4).expand(batch, 4, 4).clone()
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = 0.58 * w, 1.92 * h, 0.5 * w, 0.5 * h
    pose = torch.eye(4).expand(batch, 1, 4, 4).clone()
    pose[..., 2, 3] = 0.5
    out = dict(target_feat=torch.rand(batch, channels, h, w, generator=gen),
               source_feats=torch.rand(batch, 1, channels, h, w, generator=gen),
               poses=pose, K=K, inv_K=torch.linalg.inv(K))
    return {k: v.to(device) for k, v in out.items()}


def measure(fn: Callable[[], None], device: str, repeats: int) -> tuple[float, float]:
    """(median seconds, peak MiB) of ``fn`` after one warm-up call."""
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t = statistics.median(_timed(fn, device, repeats))
        return t, (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    with RssPeak() as peak:
        t = statistics.median(_timed(fn, device, repeats))
    return t, peak.delta_mib


def bench(name: str, bins: int, binning: str, batch: int, channels: int, h: int, w: int,
          device: str, repeats: int) -> dict[str, Any]:
    cv = PlaneSweepCostVolume(num_bins=bins, binning=binning, min_depth_bin=0.1,
                              max_depth_bin=20.0).to(device)
    pcvm = ProbabilisticCostVolumeModulation()
    x = inputs(batch, channels, h, w, device)

    def fwd() -> None:
        with torch.no_grad():
            cv(**x)

    def fwd_bwd() -> None:
        t = x['target_feat'].clone().requires_grad_()
        cv(**{**x, 'target_feat': t}).cost.sum().backward()

    with torch.no_grad():
        out = cv(**x)
    mono = torch.full((batch, 1, h, w), 5.0, device=device)
    sigma = torch.full_like(mono, 0.05)
    W = torch.rand(batch, 1, h, w, device=device)

    def modulate() -> None:
        pcvm(out.cost, mono, sigma, W, out.bins)

    row: dict[str, Any] = dict(model=name, bins=f'{bins} {binning}', device=device, batch=batch)
    for key, fn in (('fwd', fwd), ('fwd+bwd', fwd_bwd), ('pcvm', modulate)):
        t, mib = measure(fn, device, repeats)
        row[f'{key} ms'] = f'{1e3 * t:.1f}'
        row[f'{key} MiB'] = f'{mib:.0f}'
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--devices', nargs='+', default=['cpu', 'cuda'])
    parser.add_argument('--batch-cpu', type=int, default=4)
    parser.add_argument('--batch-cuda', type=int, default=12)
    parser.add_argument('--size', type=int, nargs=2, default=(48, 160), metavar=('H', 'W'))
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    rows = []
    for device in args.devices:
        if device.startswith('cuda') and not torch.cuda.is_available():
            print(f'(skipping {device}: CUDA not available)')
            continue
        batch = args.batch_cuda if device.startswith('cuda') else args.batch_cpu
        for name, bins, binning in CONFIGS:
            rows.append(bench(name, bins, binning, batch, args.channels, *args.size, device,
                              args.repeats))
    if not rows:
        return
    print(f'features {args.channels} x {args.size[0]} x {args.size[1]}, 1 lookup frame, '
          f'torch threads {torch.get_num_threads()}')
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print(' | '.join(c.rjust(n) for c, n in zip(cols, widths)))
    print('-|-'.join('-' * n for n in widths))
    for r in rows:
        print(' | '.join(str(r[c]).rjust(n) for c, n in zip(cols, widths)))


if __name__ == '__main__':
    main()
