"""Write the procedural demo dataset in the raw ScanNet v2 layout.

Usage (from the repo root)::

    python tools/make_demo_data.py --out data/scannet_demo_raw [--num-train 12] [--num-val 4]
        [--num-test 1] [--seed 0] [--points 30000] [--frames N] [--frame-size 160x120]

then convert it like the real download::

    python data_converters/scannet.py --root data/scannet_demo_raw --out data/scannet_demo

``--frames N`` (ScanNet kind) also renders N RGB-D frames per room from a camera inside it and
writes them as ``<scene>.sens`` (ScanNet's real format); convert them with
``--frames-every 1`` (see docs/scannet_frames.md). Off by default (``make demo`` needs none).

``--kind kitti`` writes procedural driving sequences in the KITTI raw layout instead (``--out``
defaults to data/kitti_raw_demo; see geo3d/datasets/demo_street), ``--kind all`` both (``--out``
is then the ScanNet root and ``--kitti-out`` the KITTI one)::

    python tools/make_demo_data.py --kind kitti [--out data/kitti_raw_demo] [--drives 4]
        [--frames 40] [--height 128] [--width 416] [--moving-objects 0] [--video-frames 50]
        [--workers 2]
    python data_converters/kitti.py --root data/kitti_raw_demo --out data/kitti_demo
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.scannet.frames import parse_frame_size  # noqa: E402
from geo3d.datasets.demo import make_demo_scannet  # noqa: E402

KITTI_DEFAULT_OUT = 'data/kitti_raw_demo'


def _make_kitti(args: argparse.Namespace, out: str) -> None:
    from geo3d.datasets.demo_street import make_demo_kitti
    s = make_demo_kitti(out, num_drives=args.drives, frames_per_drive=args.frames,
                        height=args.height, width=args.width, seed=args.seed,
                        moving_objects=args.moving_objects, video_frames=args.video_frames,
                        workers=args.workers)
    video = f', video {s.video}' if s.video else ''
    print(f'demo kitti: {len(s.drives)} drives x {s.frames_per_drive} frames '
          f'({s.width}x{s.height}) written to {out}{video} in {s.seconds:.1f} s')


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--kind', choices=('scannet', 'kitti', 'all'), default='scannet',
                   help='which demo dataset to write (default: scannet)')
    p.add_argument('--out', default=None,
                   help='output root (raw ScanNet layout; required for --kind scannet/all). '
                        f'With --kind kitti: the KITTI raw root (default {KITTI_DEFAULT_OUT})')
    p.add_argument('--num-train', type=int, default=12)
    p.add_argument('--num-val', type=int, default=4)
    p.add_argument('--num-test', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--points', type=int, default=30000, help='approx. vertices per scene')
    p.add_argument('--room-frames', type=int, default=None, metavar='N',
                   help='ScanNet demo: RGB-D frames rendered per room into <scene>.sens '
                        '(default 0: none). With --kind scannet, --frames N means the same')
    p.add_argument('--frame-size', default='160x120',
                   help='ScanNet demo: WxH of the rendered frames (default 160x120)')
    k = p.add_argument_group('KITTI demo (--kind kitti/all)')
    k.add_argument('--kitti-out', default=KITTI_DEFAULT_OUT,
                   help=f'KITTI raw root with --kind all (default {KITTI_DEFAULT_OUT})')
    k.add_argument('--drives', type=int, default=4, help='drives (default 4)')
    k.add_argument('--frames', type=int, default=None,
                   help='frames per drive (default 40); with --kind scannet: RGB-D frames per '
                        'room (default 0)')
    k.add_argument('--height', type=int, default=128, help='image height (default 128)')
    k.add_argument('--width', type=int, default=416, help='image width (default 416)')
    k.add_argument('--moving-objects', type=int, default=0,
                   help='independently moving cars per drive (default 0)')
    k.add_argument('--video-frames', type=int, default=50,
                   help='frames of the held-out demo video, 0 for none (default 50)')
    k.add_argument('--workers', type=int, default=2, help='processes (default 2)')
    args = p.parse_args(argv)
    room_frames = args.room_frames
    if args.kind == 'scannet' and room_frames is None:
        room_frames = args.frames
    room_frames = room_frames or 0
    if args.frames is None:
        args.frames = 40
    if args.kind in ('kitti', 'all'):
        if min(args.drives, args.frames) < 1 or min(args.height, args.width) < 8:
            p.error('--drives and --frames must be >= 1, --height and --width >= 8')
        if min(args.moving_objects, args.video_frames) < 0 or args.workers < 1:
            p.error('--moving-objects and --video-frames must be >= 0, --workers >= 1')
    if args.kind == 'kitti':
        _make_kitti(args, args.out or KITTI_DEFAULT_OUT)
        return 0
    if args.out is None:
        p.error(f'--out is required with --kind {args.kind}')
    if min(args.num_train, args.num_val, args.num_test) < 0 or args.points < 1000:
        p.error('scene counts must be >= 0 and --points >= 1000')
    if room_frames < 0:
        p.error('--frames / --room-frames must be >= 0')
    try:
        size = parse_frame_size(args.frame_size)
    except ValueError as e:
        p.error(str(e))
    if isinstance(size, str) or min(size) < 8:
        p.error(f'--frame-size must be WxH with sizes >= 8, got {args.frame_size!r}')
    t0 = time.perf_counter()
    ids = make_demo_scannet(args.out, args.num_train, args.num_val, args.num_test, args.seed,
                            args.points, frames=room_frames, frame_size=size,
                            progress=room_frames > 0)
    frames = f', {room_frames} RGB-D frames of {size[0]}x{size[1]} each' if room_frames else ''
    print(f'demo scannet: {len(ids)} scenes ({args.num_train} train, {args.num_val} val, '
          f'{args.num_test} test{frames}) written to {args.out} in '
          f'{time.perf_counter() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
