#!/usr/bin/env python
"""LiteMonoEncoder speed and peak memory per variant (forward, forward + backward).

    .venv/bin/python bench/bench_lite_mono.py [--variants lite-mono-8m ...] [--batches 1 4]
        [--size 192 640] [--devices cpu cuda] [--threads 1] [--repeats 3]

For each variant, batch and device: median wall time of a forward pass (eval mode, no_grad)
and of forward + backward (train mode, loss = sum of the mean squares of the 4 feature maps),
over ``repeats`` runs after warm-up (1 run on CPU, 3 on CUDA). Peak memory of forward +
backward: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated before (the
model's weights excluded); on CPU the process RSS sampled every 2 ms above the RSS before the
runs (an estimate, counts allocator slack). CPU rows use ``--threads`` torch threads (1 by
default); CUDA rows say "not run" when no GPU is present.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402

from bench_spunet import _RssPeak as RssPeak  # noqa: E402  (one RSS sampler for all benches)
from geo3d.models.backbones.lite_mono import LITE_MONO_VARIANTS, LiteMonoEncoder  # noqa: E402


def _timed(fn: Callable[[], None], device: str, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return out


def bench_variant(variant: str, batch: int, size: tuple[int, int], device: str,
                  repeats: int) -> dict[str, Any]:
    """Forward / forward+backward medians (s) and forward+backward peak memory (MiB)."""
    torch.manual_seed(0)
    model = LiteMonoEncoder(variant, height=size[0], width=size[1]).to(device)
    x = torch.rand(batch, 3, *size, device=device)
    cuda = device.startswith('cuda')
    warmup = 3 if cuda else 1

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        sum(f.square().mean() for f in model(x)).backward()

    model.eval()
    _timed(fwd, device, warmup)
    t_fwd = _timed(fwd, device, repeats)
    model.train()
    if cuda:
        _timed(fwd_bwd, device, warmup)
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t_fb = _timed(fwd_bwd, device, repeats)
        peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        with RssPeak() as rss:
            _timed(fwd_bwd, device, warmup)
            t_fb = _timed(fwd_bwd, device, repeats)
        peak = rss.delta_mib
    return dict(variant=variant, batch=batch, device=device,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                fwd_ms=1e3 * statistics.median(t_fwd), fb_ms=1e3 * statistics.median(t_fb),
                peak_mib=peak)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--variants', nargs='+', default=list(LITE_MONO_VARIANTS),
                   choices=list(LITE_MONO_VARIANTS))
    p.add_argument('--batches', type=int, nargs='+', default=[1, 4])
    p.add_argument('--size', type=int, nargs=2, default=[192, 640], metavar=('H', 'W'))
    p.add_argument('--devices', nargs='+', default=['cpu', 'cuda'])
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = (args.size[0], args.size[1])
    print(f'LiteMonoEncoder at {size[1]}x{size[0]}; CPU threads {args.threads}; median of '
          f'{args.repeats}; device {torch.cuda.get_device_name() if torch.cuda.is_available() else "-"}')
    head = (f'{"device":>6} {"variant":>16} {"params M":>9} {"batch":>5} {"fwd ms":>9} '
            f'{"fwd+bwd ms":>11} {"peak MiB":>9}')
    print(head)
    for device in args.devices:
        for variant in args.variants:
            for batch in args.batches:
                if device.startswith('cuda') and not torch.cuda.is_available():
                    print(f'{device:>6} {variant:>16} {"":>9} {batch:>5} {"not run (no CUDA)":>31}')
                    continue
                r = bench_variant(variant, batch, size, device, args.repeats)
                print(f'{r["device"]:>6} {r["variant"]:>16} {r["params_m"]:>9.2f} '
                      f'{r["batch"]:>5} {r["fwd_ms"]:>9.1f} {r["fb_ms"]:>11.1f} '
                      f'{r["peak_mib"]:>9.0f}', flush=True)
    print('peak MiB (forward+backward): CUDA = max_memory_allocated above the weights; '
          'CPU = RSS peak above the pre-run RSS')


if __name__ == '__main__':
    main()
