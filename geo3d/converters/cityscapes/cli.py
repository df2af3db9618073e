"""Command line of the Cityscapes converter (``data_converters/cityscapes.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import InputError
from .convert import VAL_MODES, convert
from .outputs import IMAGE_FORMATS


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}') \
            from None


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split('x')
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f'--resize must be WIDTHxHEIGHT, e.g. 1024x384; got '
                                         f'{text!r}') from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f'--resize must be positive, got {text!r}')
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='data_converters/cityscapes.py',
        description='Build self-supervised depth sample lists, info files and test ground truth '
                    '(depth from disparity) from a Cityscapes tree (leftImg8bit_sequence, '
                    'camera, disparity).')
    p.add_argument('--root', required=True,
                   help='Cityscapes root (holding leftImg8bit_sequence/, camera/, disparity/)')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--split', default='auto',
                   help="'auto' (train/val from the train snippets, test = every annotated test "
                        "frame) or a split folder with ManyDepth-format {train,val,test}"
                        "_files.txt, e.g. 'cityscapes' (read from --split-dir)")
    p.add_argument('--split-dir', default=None,
                   help="ManyDepth's splits/ folder (or the split's own folder); default "
                        'ROOT/splits')
    p.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--overwrite', action='store_true',
                   help='rescan cities and rewrite ground truth and images')
    p.add_argument('--sample-gap', type=int, default=2,
                   help='frames between temporal neighbours (default 2: t-2, t, t+2)')
    p.add_argument('--frame-offsets', type=_int_list, default=[-1, 1],
                   help='neighbours (units of --sample-gap) a train/val target needs '
                        '(default -1,1)')
    p.add_argument('--test-frame-offsets', type=_int_list, default=[-1],
                   help='neighbours a test target needs (default -1, for multi-frame models)')
    p.add_argument('--val', choices=VAL_MODES, default='random',
                   help="val subset: 'random' snippets of the train cities (ManyDepth's 90/10, "
                        "default) or the 'official' val cities")
    p.add_argument('--val-fraction', type=float, default=0.1,
                   help='random val: fraction of train snippets held out (default 0.1)')
    p.add_argument('--seed', type=int, default=8964, help='random val: seed (default 8964)')
    p.add_argument('--resize', type=_size, default=None,
                   help='also write the used frames cropped and resized to WxH (e.g. 1024x384, '
                        'as SfMLearner) under OUT/images/WxH/ for cheap training IO')
    p.add_argument('--image-format', choices=sorted(IMAGE_FORMATS), default='jpg',
                   help='format of the --resize images (default jpg)')
    p.add_argument('--jpeg-quality', type=int, default=95, help='JPEG quality (default 95)')
    p.add_argument('--crop-bottom', type=float, default=0.25,
                   help='fraction of the image height cut at the bottom (ego-car hood; 0.25)')
    p.add_argument('--verify-images', action='store_true',
                   help='fully decode-check every frame (slow; default reads headers)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Exit codes: 0 all done, 1 some samples were skipped (see
    OUT/failed.txt), 2 bad arguments or input (missing root, split files or named cities)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    try:
        report = convert(args.root, args.out, split=args.split, split_dir=args.split_dir,
                         workers=args.workers, overwrite=args.overwrite,
                         sample_gap=args.sample_gap, frame_offsets=args.frame_offsets,
                         test_frame_offsets=args.test_frame_offsets, val_mode=args.val,
                         val_fraction=args.val_fraction, seed=args.seed, resize=args.resize,
                         image_format=args.image_format, jpeg_quality=args.jpeg_quality,
                         crop_bottom=args.crop_bottom, verify_images=args.verify_images,
                         progress=not args.no_progress)
    except InputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 1 if report.failed else 0
