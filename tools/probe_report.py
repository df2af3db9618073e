#!/usr/bin/env python
"""Side-by-side table of linear-probe results (``tools/linear_probe.py --result-json``).

``python tools/probe_report.py NAME=RESULT.json [NAME=RESULT.json ...] [--baseline NAME]``

Prints per-class IoU of every run in columns, each run's mIoU, and the difference of every run
to the baseline (default: the last one), in mIoU points.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import Sequence


def load(spec: str) -> tuple[str, dict]:
    name, sep, path = spec.partition('=')
    if not sep:
        name, path = osp.splitext(osp.basename(spec))[0], spec
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such probe result (run tools/linear_probe.py '
                                f'--result-json {path} first)')
    with open(path) as f:
        r = json.load(f)
    if 'mIoU' not in r:
        raise ValueError(f'{path}: not a probe result (no "mIoU" key)')
    return name, r


def report(runs: list[tuple[str, dict]], baseline: str | None = None) -> str:
    names = [n for n, _ in runs]
    base = baseline or names[-1]
    if base not in names:
        raise ValueError(f'baseline {base!r} is not one of {names}')
    classes: list[str] = []
    for _, r in runs:
        for c in r.get('per_class_iou', {}):
            if c not in classes:
                classes.append(c)
    w = max([len(c) for c in classes] + [10])
    lines = [f'{"class":<{w}} ' + ' '.join(f'{n:>12}' for n in names)]
    for c in classes:
        cells = []
        for _, r in runs:
            v = r.get('per_class_iou', {}).get(c)
            cells.append(f'{v:>12.4f}' if v is not None else f'{"-":>12}')
        lines.append(f'{c:<{w}} ' + ' '.join(cells))
    lines.append(f'{"mIoU":<{w}} ' + ' '.join(f'{r["mIoU"]:>12.4f}' for _, r in runs))
    b = dict(runs)[base]['mIoU']
    for n, r in runs:
        if n != base:
            lines.append(f'{n} - {base}: {100 * (r["mIoU"] - b):+.1f} mIoU points '
                         f'({r["mIoU"]:.4f} vs {b:.4f}, {r.get("label_set", "?")}, '
                         f'{r.get("mode", "?")} probe)')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='+', help='NAME=path/to/result.json')
    p.add_argument('--baseline', help='run the others are compared to (default: the last)')
    args = p.parse_args(argv)
    try:
        runs = [load(s) for s in args.runs]
        print(report(runs, args.baseline))
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
