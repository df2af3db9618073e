"""Command line of the KITTI raw converter (``data_converters/kitti.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import GT_DEPTH_TYPES, SIDE_TO_CAM, InputError
from .convert import convert


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}') \
            from None


def _sides(text: str) -> list[str]:
    sides = [t.strip() for t in text.split(',') if t.strip()]
    bad = [s for s in sides if s not in SIDE_TO_CAM]
    if bad or not sides:
        raise argparse.ArgumentTypeError(f'sides must be a comma list of l,r; got {text!r}')
    return sides


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='data_converters/kitti.py',
        description='Build split lists, info files and Eigen-style test ground truth from a '
                    'KITTI raw (synced) tree.')
    p.add_argument('--root', required=True, help='KITTI raw root (holding the <date> folders)')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--split', default='auto',
                   help="'auto' (hold out whole drives) or a Monodepth2 split name such as "
                        "eigen_zhou or eigen, read from --split-dir (default auto)")
    p.add_argument('--split-dir', default=None,
                   help="Monodepth2's splits/ folder (or the split's own folder); "
                        'default ROOT/splits')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--overwrite', action='store_true',
                   help='rescan drives and rewrite ground truth even if valid outputs exist')
    p.add_argument('--frame-offsets', type=_int_list, default=[-1, 1],
                   help='temporal neighbours train/val frames need (default -1,1)')
    p.add_argument('--sides', type=_sides, default=['l', 'r'],
                   help='cameras of the auto split train/val lines (default l,r)')
    p.add_argument('--val-drives', type=int, default=1, help='auto split: val drives (default 1)')
    p.add_argument('--test-drives', type=int, default=1,
                   help='auto split: test drives (default 1)')
    p.add_argument('--gt-depth', choices=GT_DEPTH_TYPES, default='velo_x',
                   help="stored ground-truth depth: velodyne forward distance (velo_x, as "
                        "Monodepth2's Eigen export) or projective camera depth (cam_z)")
    p.add_argument('--verify-images', action='store_true',
                   help='fully decode-check every image (slow; default checks headers)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all done, 1 some drive/frame failed (see OUT/failed.txt),
    2 bad arguments or input (missing root, split files or named drives)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    try:
        report = convert(args.root, args.out, split=args.split, split_dir=args.split_dir,
                         workers=args.workers, overwrite=args.overwrite,
                         frame_offsets=args.frame_offsets, sides=args.sides,
                         num_val_drives=args.val_drives, num_test_drives=args.test_drives,
                         gt_depth=args.gt_depth, verify_images=args.verify_images,
                         progress=not args.no_progress)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
