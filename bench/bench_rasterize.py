#!/usr/bin/env python
"""Gaussian rasterization speed and memory: geo3d's PyTorch path (CPU) and gsplat (CUDA).

    .venv/bin/python bench/bench_rasterize.py [--sizes 1000 10000 100000]
        [--resolutions 64x64 128x128 320x240 640x480] [--repeats 3] [--threads 1]

Scene: a 6 x 5 x 2.5 m room whose walls, floor and ceiling are covered by ``N`` flat Gaussians
(spacing ``s = sqrt(area / N)``, in-plane standard deviation ``0.6 s``, opacity 0.5-1, random
colours), seen by a camera inside the room (60 degree horizontal field of view) looking at a
corner: an opaque-surface scene like a reconstructed ScanNet room, where most pixels saturate.
A second table times the Gaussian2Scene stage-2 case (``--consumer``: N Gaussians into 4 frames
of 160x120 per step).

Times are medians over ``repeats`` runs after one warm-up: ``fwd`` under ``torch.no_grad()``,
``fwd+bwd`` renders with gradients on means, quats, scales, opacities, colours and runs
backward of an L1 loss on colour + depth. Peak memory: on CUDA ``max_memory_allocated``; on
CPU the RSS peak above the pre-run RSS, sampled every 2 ms (bench_spunet's sampler). CUDA rows
say "not run" without a GPU.
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from torch import Tensor  # noqa: E402

from bench_spunet import _RssPeak as RssPeak  # noqa: E402  (one RSS sampler for all benches)
from geo3d.rendering import gsplat_cuda_available, rasterize  # noqa: E402

ROOM = (6.0, 5.0, 2.5)


def room_gaussians(n: int, seed: int = 0) -> dict[str, Tensor]:
    """``n`` flat Gaussians covering the 6 faces of a room box, as float32 tensors."""
    g = torch.Generator().manual_seed(seed)
    sx, sy, sz = ROOM
    # faces: (origin, u, v, normal axis) ; areas decide how many Gaussians each gets
    faces = [((0, 0, 0), (sx, 0, 0), (0, sy, 0)), ((0, 0, sz), (sx, 0, 0), (0, sy, 0)),
             ((0, 0, 0), (sx, 0, 0), (0, 0, sz)), ((0, sy, 0), (sx, 0, 0), (0, 0, sz)),
             ((0, 0, 0), (0, sy, 0), (0, 0, sz)), ((sx, 0, 0), (0, sy, 0), (0, 0, sz))]
    faces = [tuple(torch.tensor(v, dtype=torch.float32) for v in f) for f in faces]
    areas = torch.tensor([float(torch.linalg.cross(u, v).norm()) for _, u, v in faces])
    counts = torch.floor(areas / areas.sum() * n).long()
    counts[0] += n - int(counts.sum())
    spacing = math.sqrt(float(areas.sum()) / n)
    means, quats = [], []
    for (o, u, v), k in zip(faces, counts.tolist()):
        ab = torch.rand(k, 2, generator=g)
        means.append(o + ab[:, :1] * u + ab[:, 1:] * v)
        # rotation whose x, y axes span the face (scipy's quaternion is xyzw, gsplat's wxyz)
        e1, e2 = u / u.norm(), v / v.norm()
        xyzw = Rotation.from_matrix(torch.stack([e1, e2, torch.linalg.cross(e1, e2)], 1).numpy())
        q = torch.tensor(xyzw.as_quat(), dtype=torch.float32)[[3, 0, 1, 2]]
        quats.append(q.expand(k, 4))
    scales = torch.cat([torch.full((n, 2), 0.6 * spacing), torch.full((n, 1), 0.05 * spacing)],
                       1) * (0.7 + 0.6 * torch.rand(n, 1, generator=g))
    return dict(means=torch.cat(means), quats=torch.cat(quats), scales=scales,
                opacities=0.5 + 0.5 * torch.rand(n, generator=g),
                colors=torch.rand(n, 3, generator=g))


def cameras(num: int, width: int, height: int) -> tuple[Tensor, Tensor]:
    """``num`` cameras inside the room looking at different corners: (C, 4, 4), (C, 3, 3)."""
    sx, sy, sz = ROOM
    vms = []
    for i in range(num):
        eye = torch.tensor([sx * (0.3 + 0.1 * i), sy * 0.35, 1.5])
        target = torch.tensor([sx if i % 2 == 0 else 0.0, sy if i < 2 else 0.0, 0.6])
        fwd = (target - eye) / (target - eye).norm()
        right = torch.linalg.cross(fwd, torch.tensor([0.0, 0.0, 1.0]))
        right = right / right.norm()
        down = torch.linalg.cross(fwd, right)
        R = torch.stack([right, down, fwd])
        vm = torch.eye(4)
        vm[:3, :3], vm[:3, 3] = R, -R @ eye
        vms.append(vm)
    f = 0.5 * width / math.tan(math.radians(30.0))
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return torch.stack(vms), K.expand(num, 3, 3).clone()


def _timed(fn: Callable[[], Any], cuda: bool, repeats: int,
           clock: Callable[[], float] = time.perf_counter) -> list[float]:
    out = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t = clock()
        fn()
        if cuda:
            torch.cuda.synchronize()
        out.append(clock() - t)
    return out


def bench_case(n: int, width: int, height: int, num_cams: int, device: str, backend: str,
               repeats: int, tile_size: int | None = None, chunk: int = 16) -> dict[str, Any]:
    """Time one (N, resolution, cameras, device, backend) case; returns a row dict."""
    scene = {k: v.to(device) for k, v in room_gaussians(n).items()}
    vm, K = (t.to(device) for t in cameras(num_cams, width, height))
    params = {k: v.clone().requires_grad_() for k, v in scene.items()}
    cuda = device.startswith('cuda')
    kw = dict(viewmats=vm, Ks=K, width=width, height=height, backend=backend,
              tile_size=tile_size, chunk=chunk)
    info: dict[str, Any] = {}

    def fwd() -> None:
        with torch.no_grad():
            out = rasterize(**scene, **kw)
        info.update(visible=len(out.meta['gaussian_ids']), isects=out.meta['n_isects'],
                    backend=out.meta['backend'], alpha=float(out.alpha.mean()))

    def fwd_bwd() -> None:
        for p in params.values():
            p.grad = None
        out = rasterize(**params, **kw)
        (out.rgb.abs().mean() + out.depth.abs().mean()).backward()

    _timed(fwd, cuda, 1)
    t_f = _timed(fwd, cuda, repeats)
    if cuda:
        _timed(fwd_bwd, cuda, 1)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t_fb = _timed(fwd_bwd, cuda, repeats)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
        cpu_fb = float('nan')
    else:
        with RssPeak() as rss:
            _timed(fwd_bwd, cuda, 1)
            t_fb = _timed(fwd_bwd, cuda, repeats)
        peak = rss.delta_mib
        # CPU seconds of this thread (the whole single-threaded run happens on it): robust to
        # other processes competing for the cores, unlike wall time
        cpu_fb = statistics.median(_timed(fwd_bwd, cuda, repeats, time.thread_time))
    return dict(n=n, res=f'{width}x{height}', cams=num_cams, device=device,
                fwd=statistics.median(t_f), fwd_bwd=statistics.median(t_fb), cpu_fb=cpu_fb,
                peak=peak, **info)


HEADER = (f'{"device":>6} {"backend":>7} {"thr":>3} {"N":>7} {"res":>8} {"cams":>4} '
          f'{"visible":>8} {"isects":>9} {"alpha":>5} {"fwd s":>8} {"fwd+bwd s":>9} '
          f'{"f+b cpu s":>9} {"peak MiB":>8}')


def fmt(row: dict[str, Any]) -> str:
    return (f'{row["device"]:>6} {row["backend"]:>7} {torch.get_num_threads():>3} '
            f'{row["n"]:>7} {row["res"]:>8} {row["cams"]:>4} {row["visible"]:>8} '
            f'{row["isects"]:>9} {row["alpha"]:>5.2f} {row["fwd"]:>8.3f} {row["fwd_bwd"]:>9.3f} '
            f'{row["cpu_fb"]:>9.3f} {row["peak"]:>8.0f}')


def not_run(device: str, backend: str, n: int, res: str, cams: int, why: str) -> str:
    return (f'{device:>6} {backend:>7} {"-":>3} {n:>7} {res:>8} {cams:>4} '
            f'{"not run (" + why + ")":>65}')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', type=int, nargs='*', default=[1000, 10000, 100000])
    ap.add_argument('--resolutions', nargs='+', default=['64x64', '128x128', '320x240',
                                                          '640x480'])
    ap.add_argument('--consumer', type=int, nargs='*', default=[10000, 50000],
                    help='N for the 4 x 160x120 Gaussian2Scene case')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (torch)')
    ap.add_argument('--tile-size', type=int, default=None,
                    help="default: rasterize()'s (16 for gsplat, 8 for the torch path)")
    ap.add_argument('--chunk', type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = [tuple(int(v) for v in r.split('x')) for r in args.resolutions]
    cases = [(n, w, h, 1) for n in args.sizes for w, h in res]
    cases += [(n, 160, 120, 4) for n in args.consumer]
    gpu = torch.cuda.is_available()
    gs_ok = gpu and gsplat_cuda_available()
    print('Gaussian rasterization, room scene, forward+backward of L1(rgb) + L1(depth); '
          f'medians of {args.repeats} after warm-up; tile size {args.tile_size or "default"}, '
          f'torch-path chunk {args.chunk}')
    print(HEADER)
    for n, w, h, c in cases:
        print(fmt(bench_case(n, w, h, c, 'cpu', 'torch', args.repeats, args.tile_size,
                             args.chunk)), flush=True)
    for backend in ('gsplat', 'torch'):
        for n, w, h, c in cases:
            if not gpu:
                print(not_run('cuda', backend, n, f'{w}x{h}', c, 'no CUDA device'))
            elif backend == 'gsplat' and not gs_ok:
                print(not_run('cuda', backend, n, f'{w}x{h}', c, 'gsplat CUDA unusable'))
            else:
                print(fmt(bench_case(n, w, h, c, 'cuda', backend, max(args.repeats, 10),
                                     args.tile_size, args.chunk)), flush=True)


if __name__ == '__main__':
    main()
