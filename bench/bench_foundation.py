#!/usr/bin/env python
"""Foundation benchmarks: ScanNet converter throughput and SpUNet forward+backward.

    .venv/bin/python bench/bench_foundation.py [--quick]

Prints two tables; SpUNet runs on CPU and, when present, on CUDA.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402

from bench_converter import bench_converter  # noqa: E402
from bench_spunet import bench_spunet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='small sizes, for a smoke run')
    args = ap.parse_args()

    print('ScanNet converter (procedural demo scenes)')
    print(f'{"scenes":>7} {"points/scene":>13} {"workers":>8} {"wall s":>8} {"scenes/s":>9} {"points/s":>11}')
    sizes = [(4, 20000, 1)] if args.quick else [(8, 30000, 1), (8, 30000, 2), (8, 100000, 2)]
    for n, p, w in sizes:
        r = bench_converter(num_scenes=n, points=p, workers=w)
        print(f'{n:>7} {p:>13,} {w:>8} {r["wall_s"]:>8.2f} {r["scenes_per_s"]:>9.2f} '
              f'{r["points_per_s"]:>11,.0f}')

    print()
    print('SpUNet forward / forward+backward (batch of 2 rooms, 2 cm voxels)')
    print(f'{"device":>7} {"voxels":>9} {"fwd s":>8} {"fwd+bwd s":>10} {"voxels/s (f+b)":>15} {"peak MiB":>9}')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for dev in devices:
        for n in ([20000] if args.quick else [20000, 50000, 100000]):
            r = bench_spunet(num_points=n, device=dev, repeats=3 if dev == 'cpu' else 10)
            print(f'{dev:>7} {r["voxels"]:>9,} {r["forward_s"]:>8.3f} {r["forward_backward_s"]:>10.3f} '
                  f'{r["voxels_per_s"]:>15,.0f} {r["peak_mib"]:>9.0f}')


if __name__ == '__main__':
    main()
