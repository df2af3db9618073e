#!/usr/bin/env python
"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]``.

Flags follow OpenMMLab tools: ``--resume`` without a path continues from the work dir's last
checkpoint, with a path from that checkpoint (epoch, optimizer, schedulers and message hub are
restored); ``--amp`` turns on mixed precision on CUDA; ``--cfg-options k=v`` overrides the
config; ``--launcher pytorch`` under torchrun (see tools/dist_train.sh).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from geo3d.utils.runner import add_common_args, build_runner, enable_amp, load_config  # noqa: E402
from geo3d.utils.errors import DataNotFoundError  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Train a geo3d model')
    add_common_args(parser)
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the last checkpoint in the work dir '
                             'when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    args = parser.parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    try:
        runner = build_runner(cfg)
        runner.train()
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
