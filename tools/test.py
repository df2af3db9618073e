#!/usr/bin/env python
"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``."""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from geo3d.utils.runner import add_common_args, build_runner, load_config  # noqa: E402
from geo3d.utils.errors import DataNotFoundError  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Test (evaluate) a geo3d model')
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    args = parser.parse_args(argv)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if cfg.get('test_dataloader') is None and cfg.get('val_dataloader') is not None:
        # configs without a separate test split are evaluated on val
        cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
        cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    try:
        runner = build_runner(cfg)
        metrics = runner.test()
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print('test metrics: ' + '  '.join(f'{k}: {float(v):.4f}' for k, v in (metrics or {}).items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
