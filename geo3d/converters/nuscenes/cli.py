"""Command line of the nuScenes converter (``data_converters/nuscenes.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import OFFICIAL_SPLITS, TASKS, InputError
from .convert import convert


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}') \
            from None


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(',') if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='data_converters/nuscenes.py',
        description='Convert nuScenes (read with nuscenes-devkit) into CAM_FRONT depth '
                    'sequences with LiDAR ground truth and/or LIDAR_TOP point clouds.')
    p.add_argument('--root', required=True, help='nuScenes data root (samples/, sweeps/, '
                                                 'maps/, v1.0-*/, lidarseg/)')
    p.add_argument('--version', default='v1.0-mini',
                   help=f'table version: {", ".join(OFFICIAL_SPLITS)} (default v1.0-mini)')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--task', choices=TASKS, default='all',
                   help='depth, lidar or all (default all)')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--overwrite', action='store_true',
                   help='rewrite ground truth and point clouds even if valid outputs exist')
    p.add_argument('--val-scenes', type=_names, default=None,
                   help='comma list of scene names used as val, all others train (overrides '
                        'the official split; needed for scenes outside it)')
    p.add_argument('--frame-offsets', type=_int_list, default=[-1, 1],
                   help='depth: temporal neighbours in the CAM_FRONT chain (default -1,1)')
    p.add_argument('--min-speed', type=float, default=0.0,
                   help='depth: drop training frames with a slower ego (m/s; md4all 0.5)')
    p.add_argument('--keyframes-only', action='store_true',
                   help='depth: training targets are key frames only (default: sweeps too)')
    p.add_argument('--min-dist', type=float, default=1.0,
                   help='ground truth: minimum camera depth; lidar: remove_close radius '
                        'for sweeps (default 1.0 m, as the devkit)')
    p.add_argument('--nsweeps', type=int, default=1,
                   help='lidar: scans per point cloud incl. the key frame (default 1)')
    p.add_argument('--verify-images', action='store_true',
                   help='decode every camera image and check its size (slow)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all done, 1 some frame failed (see OUT/<task>/failed.txt),
    2 bad arguments or input (missing root, version, tables, unknown scenes)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    try:
        report = convert(args.root, args.out, version=args.version, task=args.task,
                         workers=args.workers, overwrite=args.overwrite,
                         val_scenes=args.val_scenes, frame_offsets=args.frame_offsets,
                         min_speed=args.min_speed, keyframes_only=args.keyframes_only,
                         min_dist=args.min_dist, nsweeps=args.nsweeps,
                         verify_images=args.verify_images, progress=not args.no_progress)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
