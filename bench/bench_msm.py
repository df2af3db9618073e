#!/usr/bin/env python
"""MSM training step time and peak memory vs point count, and probe feature-extraction throughput.

    .venv/bin/python bench/bench_msm.py [--sizes 20000 50000 100000] [--repeats 3] [--demo]

Scenes are synthetic rooms (``bench_spunet.room_cloud``: floor, walls, yawed boxes) with about
``size`` points; each goes through the REAL training pipeline of ``configs/msm_scannet.py``
(two augmented, cropped views, grid sampling with correspondences) and a batch of 2 scenes is
fed to ``MSM`` (default SpUNet at 2 cm, or the demo's narrow U-Net at 5 cm with ``--demo``).

* ``step_s``: one training step: student (2 masked passes) + teacher (2 passes) forward, the
  loss, backward, AdamW step and the EMA teacher update; median over ``repeats`` after warm-up.
  On CUDA the step runs under ``torch.autocast`` (bf16), as ``tools/train.py --amp`` does.
* ``peak``: CUDA ``max_memory_allocated``; on CPU the RSS peak above the pre-run RSS (see
  ``bench_spunet``).
* Probe: ``FrozenFeatureExtractor`` (frozen backbone + multi-resolution trilinear sampler of
  every level) on one scene, points per second.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import statistics
import sys
from typing import Any

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

import geo3d.datasets  # noqa: E402,F401
import geo3d.models  # noqa: E402,F401
from bench_spunet import _RssPeak, _timed, room_cloud  # noqa: E402
from geo3d.datasets.collate import point_collate  # noqa: E402
from geo3d.datasets.transforms.point import build_pipeline  # noqa: E402
from geo3d.engine.hooks.ema_teacher import ema_update  # noqa: E402
from geo3d.models.probes import FrozenFeatureExtractor  # noqa: E402
from geo3d.registry import MODELS  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def scene(points: int, seed: int, voxel: float) -> dict[str, np.ndarray]:
    """A raw scene dict (coord, color uint8, normal, segment) of about ``points`` points."""
    import bench_spunet
    old = bench_spunet.VOXEL
    bench_spunet.VOXEL = voxel
    try:
        # room_cloud puts ~3 points per voxel face: ask for points / 3 voxels
        r = room_cloud(max(points // 3, 100), seed)
    finally:
        bench_spunet.VOXEL = old
    rgb = (r['feat'][:, :3].clamp(0, 1) * 255).to(torch.uint8).numpy()
    return {'coord': r['coord'].numpy().astype(np.float32), 'color': rgb,
            'normal': r['feat'][:, 3:].numpy().astype(np.float32),
            'segment': np.zeros(len(rgb), np.int64)}


def load_cfg(demo: bool) -> Config:
    name = 'msm_scannet_demo.py' if demo else 'msm_scannet.py'
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def bench_step(cfg: Config, points: int, device: str, repeats: int, voxel: float,
               crop: int) -> dict[str, Any]:
    torch.manual_seed(0)
    pipeline_cfg = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    for t in pipeline_cfg:          # crop to the benchmark size (the config's crop may be larger)
        for v in t.get('view_pipeline', []):
            if v['type'] == 'SphereCrop':
                v['point_max'] = crop
        if t['type'] == 'SphereCrop':
            t['point_max'] = crop
    pipeline = build_pipeline(pipeline_cfg)
    batch = point_collate([pipeline(scene(points, s, voxel)) for s in range(2)])['inputs']
    batch = {k: v.to(device) for k, v in batch.items()}
    model = MODELS.build(copy.deepcopy(cfg.model)).to(device)
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)   # no per-parameter init log
    model.init_weights()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cuda = device.startswith('cuda')

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=cuda):
            losses = model.loss(batch)
        sum(v for k, v in losses.items() if k.startswith('loss')).backward()
        opt.step()
        ema_update(model.teacher, model.student, 0.996)

    warm = 2 if cuda else 1
    if cuda:
        _timed(step, device, warm)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = _timed(step, device, repeats)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        with _RssPeak() as rss:
            _timed(step, device, warm)
            t = _timed(step, device, repeats)
        peak = rss.delta_mib
    vox = sum(int(v.num_points) for v in batch.values())
    return {'device': device, 'points': 2 * points, 'voxels_2_views': vox,
            'step_s': statistics.median(t), 'peak_mib': peak}


def bench_probe(cfg: Config, points: int, device: str, repeats: int,
                voxel: float) -> dict[str, Any]:
    from geo3d.structures import PointBatch
    s = scene(points, 7, voxel)
    feat = np.concatenate([s['color'] / 127.5 - 1.0, s['normal']], 1).astype(np.float32)
    raw = PointBatch.collate([{'coord': torch.from_numpy(s['coord']),
                               'feat': torch.from_numpy(feat)}])
    pb = raw.grid_sample(voxel, mode='mean')[0].to(device)
    ext = FrozenFeatureExtractor(copy.deepcopy(cfg.model.backbone)).to(device).eval()
    _timed(lambda: ext(pb), device, 1)
    t = statistics.median(_timed(lambda: ext(pb), device, repeats))
    return {'device': device, 'voxels': int(pb.num_points), 'extract_s': t,
            'voxels_per_s': pb.num_points / t, 'dims': ext.out_channels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[20000, 50000, 100000],
                    help='raw points per scene (each view is cropped to this)')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--demo', action='store_true',
                    help='the demo config (narrow U-Net, 5 cm) instead of the paper-sized one')
    args = ap.parse_args()
    cfg = load_cfg(args.demo)
    voxel = float(cfg.get('grid_size', 0.02))
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    print(f'MSM training step ({"demo" if args.demo else "paper-sized"} config, {voxel * 100:g} '
          f'cm voxels), batch of 2 scenes x 2 views; CPU fp32 with {torch.get_num_threads()} '
          f'threads, CUDA bf16 autocast')
    print(f'{"device":>7} {"points":>9} {"voxels":>9} {"step s":>8} {"peak MiB":>9}')
    for dev in devices:
        for n in args.sizes:
            r = bench_step(cfg, n, dev, args.repeats, voxel, crop=n)
            print(f'{r["device"]:>7} {r["points"]:>9} {r["voxels_2_views"]:>9} '
                  f'{r["step_s"]:>8.3f} {r["peak_mib"]:>9.0f}', flush=True)
    print('\nProbe feature extraction (frozen backbone + trilinear sampling of every level)')
    print(f'{"device":>7} {"voxels":>9} {"dims":>5} {"s":>8} {"voxels/s":>11}')
    for dev in devices:
        for n in args.sizes:
            r = bench_probe(cfg, n, dev, args.repeats, voxel)
            print(f'{r["device"]:>7} {r["voxels"]:>9} {r["dims"]:>5} {r["extract_s"]:>8.3f} '
                  f'{r["voxels_per_s"]:>11.0f}', flush=True)


if __name__ == '__main__':
    main()
