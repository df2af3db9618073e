"""Command line of the ScanNet converter (``data_converters/scannet.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import SPLITS, TSV_NAME, InputError
from .dataset import convert
from .frames import FrameOptions, parse_frame_size

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
    f = p.add_argument_group('RGB-D frames (scenes/<id>/frames/, see docs/scannet_frames.md)')
    f.add_argument('--frames-every', type=int, default=0, metavar='K',
                   help='also write every K-th frame with a valid pose from <id>.sens or an '
                        'exported folder (default 0: no frames)')
    f.add_argument('--frames-size', default='depth',
                   help="'depth' (colour resized to the depth resolution, default), 'native' "
                        "(each at its own resolution) or WxH for both, e.g. 320x240")
    f.add_argument('--frames-dir', default=None,
                   help='root of exported frame folders FRAMES_DIR/<id>/{color,depth,pose,'
                        'intrinsic}/ (default: <id>.sens or exported folders in the scan dir)')
    f.add_argument('--frames-jpeg-quality', type=int, default=95,
                   help='JPEG quality of resized colour frames (default 95)')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all converted, 1 some scene failed, 2 bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    splits = [s.strip() for s in args.splits.split(',') if s.strip()]
    frames = None
    if args.frames_every < 0:
        parser.error('--frames-every must be >= 0')
    if args.frames_every > 0:
        try:
            frames = FrameOptions(every=args.frames_every,
                                  size=parse_frame_size(args.frames_size),
                                  jpeg_quality=args.frames_jpeg_quality,
                                  frames_dir=args.frames_dir)
        except ValueError as e:
            parser.error(str(e))
    try:
        report = convert(args.root, args.out, workers=args.workers, overwrite=args.overwrite,
                         split_dir=args.split_dir, splits=splits, label_map_path=args.label_map,
                         progress=not args.no_progress, frames=frames)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
