#!/usr/bin/env python
"""k-NN probe of frozen backbone features (no training).

``python tools/knn_probe.py CONFIG --checkpoint CKPT|none [--k 20] [--temperature 0.07]
[--bank-points 1000] [--class-balanced] [--cfg-options ...]``

CONFIG is a linear-probe config (its ``model.backbone`` and ``model.sampler`` define the
features). The training scenes, voxelized with the config's deterministic val pipeline, fill a
bank of up to ``--bank-points`` labelled voxels per scene; every val point takes the vote of its
k most cosine-similar bank features (``exp(sim / T)``, or majority with ``--temperature 0``).
Prints the per-class table and ``knn probe mIoU (<label set>): X.XXXX``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Iterator, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import geo3d.datasets  # noqa: E402,F401  (registers datasets and transforms)
import geo3d.models  # noqa: E402,F401
from geo3d.models.probes import (KNNProbe, build_extractor, build_probe_split,  # noqa: E402
                                 iter_scenes)
from geo3d.structures import PointBatch  # noqa: E402
from geo3d.utils.errors import DataNotFoundError  # noqa: E402


def build_split(cfg: Config, which: str):
    """The train or val dataset of the config, with the val pipeline and no repetition."""
    return build_probe_split(cfg, which)


def scenes(dataset, device: torch.device) -> Iterator[PointBatch]:
    return iter_scenes(dataset, device)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='k-NN probe of a frozen geo3d backbone')
    parser.add_argument('config')
    parser.add_argument('--checkpoint', required=True, help='backbone checkpoint or "none"')
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--temperature', type=float, default=0.07,
                        help='vote weight exp(sim / T); 0 = plain majority vote')
    parser.add_argument('--bank-points', type=int, default=1000,
                        help='labelled voxels per training scene in the bank')
    parser.add_argument('--class-balanced', action='store_true')
    parser.add_argument('--bank-fp16', action='store_true',
                        help='store the bank in float16 (half the memory; ScanNet at 1000 '
                             'voxels x 832-D per scene is ~4 GB in float32)')
    parser.add_argument('--max-train-scenes', type=int, default=None)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    device = torch.device(args.device)
    try:
        train_set, val_set = build_split(cfg, 'train'), build_split(cfg, 'val')
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    extractor = build_extractor(cfg, ckpt).to(device).eval()
    meta = val_set.metainfo
    probe = KNNProbe(extractor, num_classes=int(meta['num_classes']), k=args.k,
                     temperature=args.temperature or None,
                     bank_points_per_scene=args.bank_points, class_balanced=args.class_balanced,
                     ignore_index=int(meta.get('ignore_index', -1)),
                     bank_dtype=torch.float16 if args.bank_fp16 else torch.float32)
    t0 = time.time()
    n_train = len(train_set) if args.max_train_scenes is None \
        else min(args.max_train_scenes, len(train_set))
    for i, batch in enumerate(scenes(train_set, device)):
        if i >= n_train:
            break
        probe.add(batch)
    print(f'bank: {probe.bank_size} voxels of {n_train} training scenes, '
          f'{extractor.out_channels}-D features ({time.time() - t0:.1f} s)')
    r = probe.evaluate(scenes(val_set, device), class_names=meta['classes'])
    print(r['table'])
    print(f'mAcc: {r["mAcc"]:.4f}  allAcc: {r["allAcc"]:.4f}')
    print(f'knn probe mIoU ({meta["label_set"]}, k={args.k}): {r["mIoU"]:.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
