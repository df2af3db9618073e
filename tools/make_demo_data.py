"""Write the procedural demo dataset in the raw ScanNet v2 layout.

Usage (from the repo root)::

    python tools/make_demo_data.py --out data/scannet_demo_raw [--num-train 12] [--num-val 4]
        [--num-test 1] [--seed 0] [--points 30000]

then convert it like the real download::

    python data_converters/scannet.py --root data/scannet_demo_raw --out data/scannet_demo
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

from geo3d.datasets.demo import make_demo_scannet  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='output root (raw ScanNet layout)')
    p.add_argument('--num-train', type=int, default=12)
    p.add_argument('--num-val', type=int, default=4)
    p.add_argument('--num-test', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--points', type=int, default=30000, help='approx. vertices per scene')
    args = p.parse_args(argv)
    if min(args.num_train, args.num_val, args.num_test) < 0 or args.points < 1000:
        p.error('scene counts must be >= 0 and --points >= 1000')
    t0 = time.perf_counter()
    ids = make_demo_scannet(args.out, args.num_train, args.num_val, args.num_test, args.seed,
                            args.points)
    print(f'demo scannet: {len(ids)} scenes ({args.num_train} train, {args.num_val} val, '
          f'{args.num_test} test) written to {args.out} in {time.perf_counter() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
