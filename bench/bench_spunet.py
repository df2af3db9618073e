#!/usr/bin/env python
"""SpUNet (default config, in_channels=6) speed and memory on room-like voxel clouds.

    .venv/bin/python bench/bench_spunet.py [--sizes 20000 50000 100000] [--repeats 3]

Each batch holds 2 synthetic rooms (floor, 4 walls, yawed boxes) sampled densely and voxelized
at 2 cm, so the voxels form thin surfaces like real indoor scans. Times are medians over
``repeats`` runs after warm-up:

* ``forward_s``: eval mode under ``torch.no_grad()`` (inference);
* ``forward_backward_s``: train mode, forward + backward of a scalar loss over all levels.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the timed forward+backward runs
(tensors only, not the caching allocator's reserve). On CPU the process RSS sampled every 2 ms
by a background thread (``/proc/self/statm``) during the warm-up and timed forward+backward
runs, minus the RSS just before them (after ``malloc_trim(0)``, so freed heap memory is not
counted in the baseline): an estimate that also counts the model's gradients and
allocator slack, not an exact tensor count.
"""
from __future__ import annotations

import argparse
import ctypes
import math
import os
import os.path as osp
import statistics
import sys
import threading
import time
from typing import Any, Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from geo3d.models.backbones.spunet import SpUNet  # noqa: E402
from geo3d.structures import PointBatch  # noqa: E402

VOXEL = 0.02
WALL_H = 2.5


def _faces_of_box(center: Tensor, size: Tensor, yaw: float) -> list[tuple[Tensor, Tensor, Tensor]]:
    """5 faces (no bottom) of a yawed box as (origin, u, v) parallelograms."""
    c, s = math.cos(yaw), math.sin(yaw)
    ex = torch.tensor([c, s, 0.0]) * size[0]
    ey = torch.tensor([-s, c, 0.0]) * size[1]
    ez = torch.tensor([0.0, 0.0, 1.0]) * size[2]
    o = center - 0.5 * (ex + ey)
    return [(o + ez, ex, ey), (o, ex, ez), (o + ey, ex, ez), (o, ey, ez), (o + ex, ey, ez)]


def room_cloud(target_voxels: int, seed: int) -> dict[str, Tensor]:
    """Room surface points (n, 3), ~``target_voxels`` 2 cm voxels; feat (n, 6) = rgb, normal.

    A 6 m x 5 m room (2.5 m walls, no ceiling) with 8 yawed boxes, scaled uniformly so that its
    surface area is about ``target_voxels`` voxel faces.
    """
    gen = torch.Generator().manual_seed(seed)
    w, d = 6.0, 5.0
    z3 = torch.zeros(3)
    ux, uy, uz = torch.tensor([w, 0.0, 0.0]), torch.tensor([0.0, d, 0.0]), \
        torch.tensor([0.0, 0.0, WALL_H])
    faces = [(z3, ux, uy), (z3, ux, uz), (uy, ux, uz), (z3, uy, uz), (ux, uy, uz)]
    for _ in range(8):
        size = 0.4 + 0.8 * torch.rand(3, generator=gen)
        yaw = float(torch.rand(1, generator=gen)) * math.pi
        ctr = torch.cat([torch.tensor([w, d]) * (0.15 + 0.7 * torch.rand(2, generator=gen)),
                         torch.zeros(1)])
        faces += _faces_of_box(ctr, size, yaw)
    area = sum(float(torch.linalg.cross(u, v).norm()) for _, u, v in faces)
    # ~3 random points per voxel face leave about exp(-3) of the faces empty
    scale = math.sqrt(target_voxels / (1 - math.exp(-3)) * VOXEL ** 2 / area)
    coords, feats = [], []
    for o, u, v in faces:
        o, u, v = o * scale, u * scale, v * scale
        n = max(int(3 * torch.linalg.cross(u, v).norm() / VOXEL ** 2), 1)  # ~3 points per voxel
        ab = torch.rand(n, 2, generator=gen)
        coords.append(o + ab[:, :1] * u + ab[:, 1:] * v)
        normal = torch.nn.functional.normalize(torch.linalg.cross(u, v), dim=0)
        rgb = torch.rand(3, generator=gen) + 0.05 * torch.randn(n, 3, generator=gen)
        feats.append(torch.cat([rgb, normal.expand(n, 3)], 1))
    return {'coord': torch.cat(coords), 'feat': torch.cat(feats)}


def make_batch(num_voxels: int, seed: int = 0) -> PointBatch:
    """Batch of 2 rooms voxelized at 2 cm, about ``num_voxels`` voxels in all."""
    raw = PointBatch.collate([room_cloud(num_voxels // 2, seed + i) for i in range(2)])
    return raw.grid_sample(VOXEL, mode='mean')[0]


def _malloc_trim() -> None:
    """Return glibc's freed heap memory to the OS so RSS tracks live memory (best effort)."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class _RssPeak:
    """Context manager: peak RSS above the RSS at entry, sampled by a thread every 2 ms."""

    def __enter__(self) -> '_RssPeak':
        _malloc_trim()
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.base) / 2 ** 20


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


def bench_spunet(num_points: int, device: str, repeats: int) -> dict[str, Any]:
    """Time SpUNet(in_channels=6) on a 2-room batch of about ``num_points`` voxels.

    Returns a dict: voxels, device, threads, forward_s, forward_backward_s (medians, s),
    voxels_per_s (forward+backward), voxels_per_s_forward, peak_mib, peak_mem_method.
    """
    torch.manual_seed(0)
    pb = make_batch(num_points).to(device)
    model = SpUNet(6).to(device)
    cuda = device.startswith('cuda')
    warmup = 3 if cuda else 1

    def fwd() -> None:
        with torch.no_grad():
            model(pb)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        levels = model(pb)
        sum(lvl.feat.float().square().mean() for lvl in levels).backward()

    model.eval()
    _timed(fwd, device, warmup)
    t_fwd = _timed(fwd, device, repeats)
    model.train()
    if cuda:
        _timed(fwd_bwd, device, warmup)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t_fb = _timed(fwd_bwd, device, repeats)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
        method = 'torch.cuda.max_memory_allocated'
    else:
        with _RssPeak() as rss:
            _timed(fwd_bwd, device, warmup)
            t_fb = _timed(fwd_bwd, device, repeats)
        peak = rss.delta_mib
        method = 'RSS peak above pre-run RSS (2 ms sampling)'
    f, fb = statistics.median(t_fwd), statistics.median(t_fb)
    return {'voxels': pb.num_points, 'device': device, 'threads': torch.get_num_threads(),
            'forward_s': f, 'forward_backward_s': fb, 'voxels_per_s': pb.num_points / fb,
            'voxels_per_s_forward': pb.num_points / f, 'peak_mib': peak,
            'peak_mem_method': method}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[20000, 50000, 100000])
    ap.add_argument('--repeats', type=int, default=3, help='timed runs on CPU (CUDA: 10)')
    args = ap.parse_args()
    print('SpUNet default config (in_channels=6), batch of 2 rooms at 2 cm; medians after warm-up')
    print(f'{"device":>7} {"thr":>4} {"voxels":>9} {"fwd s":>8} {"fwd+bwd s":>10} '
          f'{"vox/s fwd":>11} {"vox/s f+b":>11} {"peak MiB":>9}')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for dev in devices:
        for n in args.sizes:
            r = bench_spunet(n, dev, args.repeats if dev == 'cpu' else 10)
            print(f'{dev:>7} {r["threads"]:>4} {r["voxels"]:>9,} {r["forward_s"]:>8.3f} '
                  f'{r["forward_backward_s"]:>10.3f} {r["voxels_per_s_forward"]:>11,.0f} '
                  f'{r["voxels_per_s"]:>11,.0f} {r["peak_mib"]:>9.0f}', flush=True)
    print('peak MiB: CUDA = max_memory_allocated; CPU = RSS peak above the pre-run RSS')


if __name__ == '__main__':
    main()
