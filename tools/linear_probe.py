#!/usr/bin/env python
"""Linear probe of frozen backbone features (MSM's protocol).

``python tools/linear_probe.py CONFIG --checkpoint CKPT|none [--work-dir DIR] [--cfg-options ...]``

``--checkpoint`` names the (pre-)training checkpoint whose backbone is probed (``backbone.*``,
``student.backbone.*``, ... keys; see ``geo3d.models.probes.load_backbone_weights``); ``none``
probes a randomly initialised backbone, the baseline. The probe is trained and validated by the
mmengine runner (per-class IoU in the log); the last line printed is
``linear probe mIoU (<label set>): X.XXXX`` from the last validation.

Image backbones (a config whose model is an ``ImageLinearProbe``, e.g.
``configs/linear_probe_digits.py``): the frozen features of the train / val / test loaders are
extracted once, a logistic regression is fitted on the training features (weight decay
selected on val) and a k-NN classifier votes (:mod:`geo3d.models.probes.image_probe`); the last
lines printed are ``linear probe top-1 (<split>): X.XXXX`` and ``knn top-1 (<split>, k=K):
X.XXXX``, and ``WORK_DIR/image_probe.json`` holds the numbers.

``--cached`` fits the probe offline instead (:class:`geo3d.models.probes.CachedLinearProbe`):
the frozen features of every training scene are extracted once with the val pipeline, a random
``cached_probe.points_per_scene`` voxels per scene are cached, and the standardised linear layer
is fitted on them (``cached_probe`` in the config: epochs, batch_size, lr, weight_decay,
points_per_scene, class_balanced, seed); much cheaper on a CPU, no augmentation.
``--result-json PATH`` writes mIoU, per-class IoU and the settings (atomically).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import time  # noqa: E402

import torch  # noqa: E402

from geo3d.utils.errors import DataNotFoundError  # noqa: E402
from geo3d.utils.io import atomic_write_json  # noqa: E402
from geo3d.utils.runner import add_common_args, build_runner, load_config  # noqa: E402


def label_set_of(cfg) -> str:
    """The label set named by the val dataset (or the config's ``label_set``)."""
    ds = (cfg.get('val_dataloader') or {}).get('dataset', {}) or {}
    return str(ds.get('label_set', cfg.get('label_set', 'unknown')))


def last_val_miou(runner) -> float | None:
    """mIoU of the last validation run, from the runner's message hub."""
    hub = runner.message_hub
    for key in ('val/seg/mIoU', 'val/mIoU'):
        if key in hub.log_scalars:
            return float(hub.get_scalar(key).current())
    return None


CACHED_DEFAULTS = dict(epochs=100, batch_size=4096, lr=0.01, weight_decay=0.01, warmup_epochs=2,
                       points_per_scene=4000, class_balanced=False, seed=0)


def run_cached(cfg, ckpt: str | None) -> dict:
    """Offline probe on cached features; returns the evaluation dict (see CachedLinearProbe)."""
    import geo3d.datasets  # noqa: F401  (registers datasets and transforms)
    import geo3d.models  # noqa: F401
    from geo3d.models.probes import (CachedLinearProbe, build_extractor, build_probe_split,
                                     iter_scenes)
    opts = dict(CACHED_DEFAULTS, **(cfg.get('cached_probe') or {}))
    unknown = set(opts) - set(CACHED_DEFAULTS)
    if unknown:
        raise ValueError(f'unknown cached_probe keys {sorted(unknown)}; '
                         f'known: {sorted(CACHED_DEFAULTS)}')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    train_set, val_set = build_probe_split(cfg, 'train'), build_probe_split(cfg, 'val')
    meta = val_set.metainfo
    torch.manual_seed(opts['seed'])     # the random-init baseline's weights are reproducible
    extractor = build_extractor(cfg, ckpt).to(device).eval()
    probe = CachedLinearProbe(extractor, int(meta['num_classes']), opts['points_per_scene'],
                              opts['class_balanced'], int(meta.get('ignore_index', -1)),
                              opts['seed'])
    t0 = time.time()
    from tqdm import tqdm
    for batch in tqdm(iter_scenes(train_set, device), total=len(train_set),
                      desc='extracting training features'):
        probe.add(batch)
    print(f'cache: {probe.cache_size} voxels of {len(train_set)} training scenes, '
          f'{extractor.out_channels}-D features ({time.time() - t0:.1f} s)')
    t0 = time.time()
    losses = probe.fit(opts['epochs'], opts['batch_size'], opts['lr'], opts['weight_decay'],
                       opts['warmup_epochs'], log_interval=max(opts['epochs'] // 5, 1))
    print(f'fitted in {time.time() - t0:.1f} s, final training loss {losses[-1]:.4f}')
    r = probe.evaluate(iter_scenes(val_set, device), class_names=meta['classes'])
    print(r['table'])
    print(f'mAcc: {r["mAcc"]:.4f}  allAcc: {r["allAcc"]:.4f}')
    r['classes'] = list(meta['classes'])
    r['settings'] = opts
    return r


def write_result(path: str, cfg, ckpt: str | None, miou: float, mode: str,
                 extra: dict | None = None) -> None:
    out = dict(mIoU=float(miou), label_set=label_set_of(cfg), checkpoint=ckpt or 'none',
               mode=mode, config=str(cfg.filename))
    if extra:
        out['mAcc'] = float(extra['mAcc'])
        out['allAcc'] = float(extra['allAcc'])
        out['per_class_iou'] = {c: float(v) for c, v in zip(extra['classes'], extra['iou'])}
        out['settings'] = extra['settings']
    atomic_write_json(path, out)


def image_probe(cfg, ckpt: str | None) -> int:
    """Linear + k-NN evaluation of a frozen image backbone; prints and writes the numbers."""
    import os

    import geo3d.datasets  # noqa: F401  (registers datasets and transforms)
    from geo3d.models.probes.image_probe import run_image_probe
    from geo3d.utils.io import atomic_write_json
    try:
        r = run_image_probe(cfg, ckpt)
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    os.makedirs(cfg.work_dir, exist_ok=True)
    atomic_write_json(osp.join(cfg.work_dir, 'image_probe.json'),
                      dict(r, val_top1_per_weight_decay={
                          str(k): v for k, v in r['val_top1_per_weight_decay'].items()}))
    print(f'features: {r["num_train"]} training images, {r["feature_dim"]}-D; weight decay '
          f'{r["weight_decay"]:g} (val top-1 per weight decay: '
          f'{r["val_top1_per_weight_decay"]})')
    for split in [s for s in ('val', 'test') if f'{s}/linear_top1' in r]:
        print(f'linear probe top-1 ({split}): {r[f"{split}/linear_top1"]:.4f}')
        print(f'knn top-1 ({split}, k={cfg.model.get("knn_k", 20)}): '
              f'{r[f"{split}/knn_top1"]:.4f}')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Linear probe of a frozen geo3d backbone')
    add_common_args(parser)
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint holding the backbone weights, or "none" for a random '
                             'backbone (the baseline)')
    parser.add_argument('--cached', action='store_true',
                        help='fit the probe offline on cached frozen features (no augmentation)')
    parser.add_argument('--result-json', help='write the mIoU and per-class IoU here')
    args = parser.parse_args(argv)
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if ckpt is not None and not osp.isfile(ckpt):
        print(f'error: checkpoint {ckpt} does not exist', file=sys.stderr)
        return 2
    cfg = load_config(args)
    if cfg.model.get('type') == 'ImageLinearProbe':
        return image_probe(cfg, ckpt)
    if cfg.model.get('type') != 'LinearProbeSegmentor':
        print(f'error: {args.config} is not a linear-probe config (model type '
              f'{cfg.model.get("type")!r}, expected LinearProbeSegmentor or '
              'ImageLinearProbe)', file=sys.stderr)
        return 2
    cfg.model.backbone_checkpoint = ckpt
    cfg.load_from, cfg.resume = None, False
    if args.cached:
        try:
            r = run_cached(cfg, ckpt)
        except (DataNotFoundError, ValueError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        if args.result_json:
            write_result(args.result_json, cfg, ckpt, r['mIoU'], 'cached', r)
        print(f'linear probe mIoU ({label_set_of(cfg)}, cached features): {r["mIoU"]:.4f}')
        return 0
    try:
        runner = build_runner(cfg)
        runner.train()
        miou = last_val_miou(runner)
        if miou is None:        # training ended without a validation
            miou = float(runner.val()['seg/mIoU'])
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.result_json:
        write_result(args.result_json, cfg, ckpt, miou, 'online')
    print(f'linear probe mIoU ({label_set_of(cfg)}): {miou:.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
