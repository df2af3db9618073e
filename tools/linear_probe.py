#!/usr/bin/env python
"""Linear probe of frozen backbone features (MSM's protocol).

``python tools/linear_probe.py CONFIG --checkpoint CKPT|none [--work-dir DIR] [--cfg-options ...]``

``--checkpoint`` names the (pre-)training checkpoint whose backbone is probed (``backbone.*``,
``student.backbone.*``, ... keys; see ``geo3d.models.probes.load_backbone_weights``); ``none``
probes a randomly initialised backbone, the baseline. The probe is trained and validated by the
mmengine runner (per-class IoU in the log); the last line printed is
``linear probe mIoU (<label set>): X.XXXX`` from the last validation.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from geo3d.utils.errors import DataNotFoundError  # noqa: E402
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Linear probe of a frozen geo3d backbone')
    add_common_args(parser)
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint holding the backbone weights, or "none" for a random '
                             'backbone (the baseline)')
    args = parser.parse_args(argv)
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if ckpt is not None and not osp.isfile(ckpt):
        print(f'error: checkpoint {ckpt} does not exist', file=sys.stderr)
        return 2
    cfg = load_config(args)
    if cfg.model.get('type') != 'LinearProbeSegmentor':
        print(f'error: {args.config} is not a linear-probe config (model type '
              f'{cfg.model.get("type")!r}, expected LinearProbeSegmentor)', file=sys.stderr)
        return 2
    cfg.model.backbone_checkpoint = ckpt
    cfg.load_from, cfg.resume = None, False
    try:
        runner = build_runner(cfg)
        runner.train()
        miou = last_val_miou(runner)
        if miou is None:        # training ended without a validation
            miou = float(runner.val()['seg/mIoU'])
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'linear probe mIoU ({label_set_of(cfg)}): {miou:.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
