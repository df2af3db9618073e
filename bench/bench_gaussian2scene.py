#!/usr/bin/env python
"""Gaussian2Scene stage-2 training step: time and peak memory vs points, frames and render size.

    .venv/bin/python bench/bench_gaussian2scene.py [--points 5000 10000 20000]
        [--views 2x80x60 4x80x60 2x160x120] [--cuda-points 50000 100000 200000]
        [--cuda-views 4x160x120 8x160x120 8x320x240] [--crop none|frustum] [--repeats 2]
        [--threads 1]

Scene: one synthetic room (``bench_spunet.room_cloud``: floor, walls, yawed boxes, scaled so that
it holds about ``points`` voxels of 2 cm; one point per voxel), seen by ``F`` cameras inside it
(60 degree horizontal field of view, looking at different corners) with random target images
and depths (the step's cost does not depend on the pixel values). The model is
``Gaussian2Scene`` with the demo config's narrow SpUNet on CPU (torch rasterizer) and the
reference config's SpUNet on CUDA (``backend='auto'``: gsplat when its kernels build), all
default losses (RGB L1 + SSIM, depth, centre -> nearest point) and an AdamW step.

* ``step s``: wall time of forward + backward + optimiser step, median of ``repeats`` after one
  warm-up; ``cpu s``: the same in CPU seconds of the (single) thread (robust to other processes
  sharing the cores); ``backbone s``: SpUNet forward + backward alone on the same points, for
  the share of the renderer and losses (CPU seconds on CPU); ``alpha``: mean rendered opacity
  (how much of the views the room's Gaussians cover);
* ``peak MiB``: CUDA ``max_memory_allocated``; on CPU the RSS peak above the pre-run RSS
  (bench_spunet's sampler). CUDA rows say "not run" without a GPU.
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
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

import geo3d.models  # noqa: E402,F401
from bench_spunet import VOXEL, _RssPeak, room_cloud  # noqa: E402
from geo3d.registry import MODELS  # noqa: E402
from geo3d.structures import PointBatch  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(4, 4) OpenCV camera-to-world (x right, y down, z forward) at ``eye`` facing ``target``."""
    z = torch.nn.functional.normalize(target - eye, dim=0)
    x = torch.nn.functional.normalize(torch.linalg.cross(z, torch.tensor([0.0, 0.0, -1.0])),
                                      dim=0)
    y = torch.linalg.cross(z, x)
    T = torch.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def make_inputs(points: int, frames: int, h: int, w: int, seed: int = 0) -> dict[str, Any]:
    """A ``scannet_frames_collate``-style batch of one room with ``frames`` random views."""
    room = room_cloud(points, seed)
    rgb = room['feat'][:, :3].clamp(0, 1)
    raw = PointBatch.collate([{'coord': room['coord'], 'feat': torch.cat(
        [rgb * 2 - 1, room['feat'][:, 3:]], 1), 'color': rgb * 2 - 1}])
    vox, _ = raw.grid_sample(VOXEL, mode='first')
    vox.grid_size = VOXEL
    lo, hi = vox.coord.min(0).values, vox.coord.max(0).values
    size = hi - lo
    poses = []
    for i in range(frames):
        eye = lo + size * torch.tensor([0.3 + 0.4 * (i % 2), 0.3 + 0.4 * ((i // 2) % 2), 0.6])
        corner = torch.tensor([float(i % 2 == 0), float((i // 2) % 2 == 0), 0.2])
        poses.append(look_at(eye, lo + size * corner))
    f = 0.5 * w / math.tan(math.radians(30.0))
    K = torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(seed)
    return {'images': torch.rand(1, frames, 3, h, w, generator=gen),
            'depth': 0.5 + 3 * torch.rand(1, frames, 1, h, w, generator=gen),
            'camera_to_world': torch.stack(poses)[None], 'intrinsics': K.expand(1, frames, 3, 3),
            'points': vox}


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


def build_model(device: str, crop: str) -> torch.nn.Module:
    name = 'gaussian2scene_scannet_demo.py' if device == 'cpu' else 'gaussian2scene_scannet.py'
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    cfg.model.render.backend = 'torch' if device == 'cpu' else 'auto'
    cfg.model.crop = None if crop == 'none' else crop
    model = MODELS.build(cfg.model)
    return model.to(device).train()


def bench_case(points: int, frames: int, h: int, w: int, device: str, crop: str,
               repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(device, crop)
    inputs = model.data_preprocessor({'inputs': make_inputs(points, frames, h, w)},
                                     True)['inputs']
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.startswith('cuda')
    info: dict[str, Any] = {}

    def step() -> None:
        out = model(inputs, mode='loss')
        loss = sum(v for k, v in out.items() if k.startswith('loss'))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        info['alpha'] = float(out['alpha'])

    def backbone() -> None:
        model.zero_grad(set_to_none=True)
        model.backbone(inputs['points'])[-1].feat.sum().backward()

    with torch.no_grad():
        info['visible'] = model._check_inputs(inputs)[0].num_points
    if cuda:
        _timed(step, cuda, 1)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = _timed(step, cuda, repeats)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
        cpu = float('nan')
    else:
        with _RssPeak() as rss:
            _timed(step, cuda, 1)
            t = _timed(step, cuda, repeats)
        peak = rss.delta_mib
        cpu = statistics.median(_timed(step, cuda, repeats, time.thread_time))
    _timed(backbone, cuda, 1)
    t_bb = _timed(backbone, cuda, repeats, time.perf_counter if cuda else time.thread_time)
    return dict(points=inputs['points'].num_points, frames=frames, res=f'{w}x{h}',
                device=device, step=statistics.median(t), cpu=cpu,
                backbone=statistics.median(t_bb), peak=peak, **info)


HEADER = (f'{"device":>6} {"thr":>3} {"crop":>7} {"points":>7} {"seen":>7} {"frames":>6} '
          f'{"res":>8} {"alpha":>5} {"step s":>7} {"cpu s":>7} {"backbone s":>10} {"peak MiB":>8}')


def fmt(row: dict[str, Any], crop: str) -> str:
    return (f'{row["device"]:>6} {torch.get_num_threads():>3} {crop:>7} {row["points"]:>7} '
            f'{row["visible"]:>7} {row["frames"]:>6} {row["res"]:>8} {row["alpha"]:>5.2f} '
            f'{row["step"]:>7.3f} '
            f'{row["cpu"]:>7.3f} {row["backbone"]:>10.3f} {row["peak"]:>8.0f}')


def parse_views(views: list[str]) -> list[tuple[int, int, int]]:
    out = []
    for v in views:
        f, w, h = (int(x) for x in v.split('x'))
        out.append((f, h, w))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--points', type=int, nargs='+', default=[5000, 10000, 20000])
    ap.add_argument('--views', nargs='+', default=['2x80x60', '4x80x60', '2x160x120'],
                    help='FxWxH: frames per scene x render width x height (CPU rows)')
    ap.add_argument('--cuda-points', type=int, nargs='+', default=[50000, 100000, 200000])
    ap.add_argument('--cuda-views', nargs='+', default=['4x160x120', '8x160x120', '8x320x240'])
    ap.add_argument('--crop', choices=('none', 'frustum'), default='none')
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (torch)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init log
    print('Gaussian2Scene stage 2, one room per step, forward + backward + AdamW; medians of '
          f'{args.repeats} after warm-up; CPU: demo SpUNet + torch rasterizer, CUDA: reference '
          'SpUNet + gsplat')
    print(HEADER)
    views = parse_views(args.views)
    base = views[0]
    # points sweep at the first view setting, then the view settings at the smallest size
    cases = [(n, *base) for n in args.points] + [(args.points[0], *v) for v in views[1:]]
    for n, f, h, w in cases:
        print(fmt(bench_case(n, f, h, w, 'cpu', args.crop, args.repeats), args.crop),
              flush=True)
    cviews = parse_views(args.cuda_views)
    ccases = [(n, *cviews[0]) for n in args.cuda_points] + \
        [(args.cuda_points[0], *v) for v in cviews[1:]]
    for n, f, h, w in ccases:
        if not torch.cuda.is_available():
            print(f'{"cuda":>6} {"-":>3} {args.crop:>7} {n:>7} {"-":>7} {f:>6} '
                  f'{f"{w}x{h}":>8}   not run (no CUDA device)')
            continue
        print(fmt(bench_case(n, f, h, w, 'cuda', args.crop, max(args.repeats, 5)), args.crop),
              flush=True)


if __name__ == '__main__':
    main()
