#!/usr/bin/env python
"""Training throughput of the 2D SSL algorithms (images / s), CPU and CUDA.

    .venv/bin/python bench/bench_ssl2d.py [--backbone digits|resnet18|resnet50]
        [--image-size 16] [--batch-size 128] [--steps 5] [--devices cpu cuda]
        [--methods simclr mochi ...] [--json OUT]

Every method is built from its ``configs/<method>_digits.py`` (neck, loss, views), with the
backbone replaced when ``--backbone`` is not ``digits`` (the configs' quarter-width ResNet-18):
``resnet18`` / ``resnet50`` are torchvision's ResNets (ImageNet stem). A step is the data
preprocessor (uint8 views -> normalised floats on the device), forward, backward and an AdamW
update, on a fixed synthetic batch of B images with the config's number of views (so data
loading and augmentation are not included; ``--pipeline`` adds a line for the CPU multi-view
augmentation alone). Reported: median seconds per step over ``--steps`` after 2 warm-up steps,
images / s = B / that (images, not views: CACR sees 4 views, SLA 4 rotations of 1 view, Mixed
Barlow Twins a third, mixed pass). CUDA timings synchronise before reading the clock.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

import geo3d.datasets  # noqa: E402,F401
import geo3d.models  # noqa: E402,F401
from geo3d.registry import DATASETS, MODELS  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('simclr', 'barlowtwins', 'mixed_barlowtwins', 'mocov2', 'mochi', 'dcl', 'dclw',
           'isogclr', 'cacr', 'amcl', 'sla', 'groco', 'scatsimclr')
BACKBONES = {
    'resnet18': dict(type='TorchvisionResNet', depth=18, stem='imagenet'),
    'resnet50': dict(type='TorchvisionResNet', depth=50, stem='imagenet'),
}


def num_views(cfg: Config) -> int:
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'MultiViewImages':
            n = t.get('num_views', 2)
            return n if isinstance(n, int) else sum(n)
    return 1


def build(method: str, backbone: str, batch: int, size: int, device: torch.device):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{method}_digits.py'))
    model_cfg = cfg.model
    if backbone != 'digits':
        model_cfg.backbone = dict(BACKBONES[backbone])
    elif model_cfg.backbone.type == 'ScatNetBackbone':  # filters are built for one size
        model_cfg.backbone.image_size = size
    if model_cfg.type in ('MoCoV2', 'MoCHi'):
        model_cfg.queue_size = max(int(model_cfg.queue_size), batch)
        model_cfg.mix_start_iter = 0  # time the mixing, not the warm-up
    if model_cfg.get('loss', {}).get('type') == 'ISogCLRLoss':
        model_cfg.loss.num_samples = max(int(model_cfg.loss.num_samples), batch)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(device).train()
    g = torch.Generator().manual_seed(0)
    views = num_views(cfg)
    data = {'inputs': [torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                                     generator=g) for _ in range(views)],
            'data_samples': {'gt_label': torch.arange(batch) % 10,
                             'sample_idx': torch.arange(batch)}}
    return model, data, views


def time_steps(model, data: dict, steps: int, device: torch.device) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        batch = model.data_preprocessor(data, True)
        opt.zero_grad(set_to_none=True)
        out = model(**batch, mode='loss')
        sum(v for k, v in out.items() if 'loss' in k).backward()
        opt.step()

    times = []
    for i in range(steps + 2):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pipeline_rate(size: int, n: int = 256) -> float:
    """Images / s of the digits configs' 2-view augmentation on the CPU (one process)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'simclr_digits.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.image_size = size
    ds_cfg.max_samples = n
    ds_cfg.pipeline[0]['pipelines'][0][0]['size'] = size
    dataset = DATASETS.build(ds_cfg)
    t0 = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return len(dataset) / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backbone', default='digits', choices=('digits', *BACKBONES))
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--devices', nargs='+', default=['cpu', 'cuda'])
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--pipeline', action='store_true',
                        help='also time the CPU multi-view augmentation')
    parser.add_argument('--json', help='write the rows here')
    args = parser.parse_args()
    devices = [torch.device(d) for d in args.devices
               if d == 'cpu' or (d == 'cuda' and torch.cuda.is_available())]
    skipped = [d for d in args.devices if d == 'cuda' and not torch.cuda.is_available()]
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, backbone '
          f'{args.backbone}, {args.image_size}x{args.image_size}, batch {args.batch_size}'
          + (f'; skipped {skipped} (no CUDA device)' if skipped else ''))
    if any(d.type == 'cuda' for d in devices):
        print(f'CUDA device: {torch.cuda.get_device_name(0)}')
    rows = []
    header = f'{"method":<20}{"device":<8}{"views":>6}{"s/step":>10}{"images/s":>11}'
    print(header)
    print('-' * len(header))
    for device in devices:
        for method in args.methods:
            model, data, views = build(method, args.backbone, args.batch_size,
                                       args.image_size, device)
            sec = time_steps(model, data, args.steps, device)
            row = dict(method=method, device=device.type, views=views, s_per_step=sec,
                       images_per_s=args.batch_size / sec)
            rows.append(row)
            print(f'{method:<20}{device.type:<8}{views:>6}{sec:>10.4f}'
                  f'{row["images_per_s"]:>11.1f}')
            del model
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    if args.pipeline:
        rate = pipeline_rate(args.image_size)
        print(f'CPU 2-view augmentation (MultiViewImages, one process): {rate:.0f} images/s')
        rows.append(dict(method='augmentation', device='cpu', images_per_s=rate))
    if args.json:
        from geo3d.utils.io import atomic_write_json
        atomic_write_json(args.json, dict(args=vars(args), rows=rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
