#!/usr/bin/env python
"""Convert published Monodepth2 / ManyDepth weights into one geo3d checkpoint.

``python tools/convert_depth_weights.py WEIGHTS_DIR OUT.pth [--format auto|monodepth2|manydepth]
[--no-pose] [--scales 0 1 2 3] [--overwrite]``

WEIGHTS_DIR is an unzipped model folder: Monodepth2's ``encoder.pth``, ``depth.pth`` and, when
present, ``pose_encoder.pth`` + ``pose.pth`` (e.g. ``mono_640x192``); or ManyDepth's
(``mono_encoder.pth``, ``mono_depth.pth``, ``pose_encoder.pth``, ``pose.pth``, ``encoder.pth``)
whose single-frame teacher and pose net are converted (its multi-frame cost-volume encoder
comes with a later issue; only its metadata is kept). ``--format auto`` picks ManyDepth when
``mono_encoder.pth`` exists.

OUT.pth is ``{'state_dict': {...}, 'meta': {...}}`` with keys ``encoder.*``,
``depth_decoder.*``, ``pose_encoder.*``, ``pose_decoder.*`` (a ``MonoDepth`` model's
submodules) and meta ``height``, ``width`` (the training resolution), ``use_stereo``,
``module_configs`` (the networks' registry configs), ...; use it with ``load_from`` /
``tools/test.py --checkpoint``. Files are read with ``torch.load(weights_only=True)``; the
output is written atomically.
"""
from __future__ import annotations

import argparse
import io
import os
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from geo3d.models.depth.published_weights import (  # noqa: E402
    WeightConversionError, load_manydepth_weights, load_monodepth2_weights)
from geo3d.utils.io import atomic_write_bytes  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('weights_dir', help='unzipped Monodepth2 / ManyDepth model folder')
    p.add_argument('out', help='geo3d checkpoint to write (.pth)')
    p.add_argument('--format', choices=('auto', 'monodepth2', 'manydepth'), default='auto')
    p.add_argument('--no-pose', action='store_true', help='leave out the pose networks')
    p.add_argument('--scales', type=int, nargs='+', default=None,
                   help="the decoder's output scales in the reference's order (default 0..n-1)")
    p.add_argument('--overwrite', action='store_true', help='replace an existing OUT')
    return p.parse_args(argv)


def convert(weights_dir: str, fmt: str = 'auto', pose: bool = True,
            scales: Sequence[int] | None = None) -> dict:
    """The geo3d checkpoint dict for a published model folder (see the module docstring)."""
    if not osp.isdir(weights_dir):
        raise FileNotFoundError(f'{weights_dir} is not a directory')
    if fmt == 'auto':
        fmt = 'manydepth' if osp.isfile(osp.join(weights_dir, 'mono_encoder.pth')) \
            else 'monodepth2'

    def path(name: str) -> str:
        return osp.join(weights_dir, name)

    pose_files = (path('pose_encoder.pth'), path('pose.pth'))
    have_pose = [osp.isfile(f) for f in pose_files]
    if pose and any(have_pose) and not all(have_pose):
        missing = pose_files[have_pose.index(False)]
        raise FileNotFoundError(f'{missing} is missing (the other pose file exists); '
                                f'pass --no-pose to convert the depth networks only')
    pe, pd = pose_files if pose and all(have_pose) else (None, None)
    if fmt == 'manydepth':
        multi = path('encoder.pth') if osp.isfile(path('encoder.pth')) else None
        cw = load_manydepth_weights(path('mono_encoder.pth'), path('mono_depth.pth'), pe, pd,
                                    encoder_path=multi, scales=scales)
    else:
        cw = load_monodepth2_weights(path('encoder.pth'), path('depth.pth'), pe, pd,
                                     scales=scales)
    meta = dict(cw.meta)
    meta['module_configs'] = cw.module_configs
    meta['converted_from'] = osp.abspath(weights_dir)
    return {'state_dict': cw.flat_state_dict(), 'meta': meta}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists (pass --overwrite to replace it)', file=sys.stderr)
        return 1
    try:
        ckpt = convert(args.weights_dir, args.format, not args.no_pose, args.scales)
    except (FileNotFoundError, WeightConversionError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    atomic_write_bytes(args.out, buf.getvalue())
    meta = ckpt['meta']
    counts: dict[str, int] = {}
    for k in ckpt['state_dict']:
        counts[k.split('.', 1)[0]] = counts.get(k.split('.', 1)[0], 0) + 1
    print(f'{meta["source_format"]}: ' + ', '.join(f'{m} {n} tensors' for m, n in counts.items())
          + f'; trained at {meta.get("width", "?")}x{meta.get("height", "?")}'
          + ('' if 'pose_encoder' in counts else '; no pose networks')
          + f' -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
