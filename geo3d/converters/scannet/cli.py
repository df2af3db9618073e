"""Command line of the ScanNet converter (``data_converters/scannet.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import SPLITS, TSV_NAME, InputError
from .dataset import convert

# ------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='data_converters/scannet.py',
        description='Convert raw ScanNet v2 scans into per-scene .npy arrays.')
    p.add_argument('--root', required=True, help='ScanNet v2 root (scans/, scans_test/, tsv)')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--overwrite', action='store_true', help='reconvert finished scenes')
    p.add_argument('--split-dir', default=None,
                   help='directory holding scannetv2_{train,val,test}.txt')
    p.add_argument('--splits', default=','.join(SPLITS),
                   help='comma-separated splits to convert (default train,val,test)')
    p.add_argument('--label-map', default=None, help=f'path of {TSV_NAME} (default ROOT/...)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all converted, 1 some scene failed, 2 bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    splits = [s.strip() for s in args.splits.split(',') if s.strip()]
    try:
        report = convert(args.root, args.out, workers=args.workers, overwrite=args.overwrite,
                         split_dir=args.split_dir, splits=splits, label_map_path=args.label_map,
                         progress=not args.no_progress)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
