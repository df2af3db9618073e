"""Benchmark the ScanNet v2 converter on procedural demo scenes.

Usage (from the repo root)::

    python bench/bench_converter.py [--scenes 16] [--points 30000] [--workers 1 2]

Generates ``scenes`` demo scenes (raw ScanNet layout) in a temporary directory, converts them
once per worker count into a fresh output directory, and prints one table row per run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.scannet import convert  # noqa: E402
from geo3d.datasets.demo import make_demo_scannet  # noqa: E402


def bench_converter(num_scenes: int = 16, points: int = 30000, workers: int = 1,
                    raw_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Convert ``num_scenes`` demo scenes with ``workers`` processes and time it.

    Args:
        num_scenes: scenes to generate (all in the train split) when ``raw_root`` is None.
        points: approximate vertices per scene.
        workers: converter worker processes.
        raw_root: reuse an already generated raw root instead of generating one.

    Returns:
        dict with scenes, points, workers, wall_s, convert_s, scenes_per_s, points_per_s,
        gen_s (generation time, 0 when ``raw_root`` was given) and failed.
    """
    with tempfile.TemporaryDirectory(prefix='bench_scannet_') as tmp:
        gen_s = 0.0
        if raw_root is None:
            t0 = time.perf_counter()
            raw_root = Path(tmp) / 'raw'
            make_demo_scannet(raw_root, num_train=num_scenes, num_val=0, num_test=0, seed=0,
                              points_per_scene=points)
            gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = convert(raw_root, Path(tmp) / 'out', workers=workers, progress=False,
                      verbose=False)
        wall = time.perf_counter() - t0
    return {
        'scenes': rep.converted, 'points': rep.points, 'workers': workers, 'wall_s': wall,
        'convert_s': rep.seconds, 'scenes_per_s': rep.converted / wall,
        'points_per_s': rep.points / wall, 'gen_s': gen_s, 'failed': len(rep.failed)}


def _table(rows: Sequence[dict[str, Any]]) -> str:
    head = f'{"workers":>7} {"scenes":>6} {"points":>10} {"wall s":>7} {"scenes/s":>9} ' \
           f'{"points/s":>11} {"failed":>6}'
    lines = [head, '-' * len(head)]
    for r in rows:
        lines.append(f'{r["workers"]:>7d} {r["scenes"]:>6d} {r["points"]:>10,d} '
                     f'{r["wall_s"]:>7.2f} {r["scenes_per_s"]:>9.1f} {r["points_per_s"]:>11,.0f} '
                     f'{r["failed"]:>6d}')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description='ScanNet converter benchmark on demo scenes')
    p.add_argument('--scenes', type=int, default=16)
    p.add_argument('--points', type=int, default=30000)
    p.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='bench_scannet_raw_') as tmp:
        t0 = time.perf_counter()
        make_demo_scannet(tmp, num_train=args.scenes, num_val=0, num_test=0, seed=0,
                          points_per_scene=args.points)
        gen = time.perf_counter() - t0
        print(f'generated {args.scenes} demo scenes x ~{args.points:,} vertices in {gen:.1f} s '
              f'({args.scenes / gen:.1f} scenes/s); cpus: {os.cpu_count()}')
        rows = [bench_converter(args.scenes, args.points, w, raw_root=tmp) for w in args.workers]
    print(_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
