"""Build self-supervised depth sample lists, info files and test ground truth from Cityscapes.

Usage (from the repo root, no install needed)::

    python data_converters/cityscapes.py --root CITYSCAPES --out DIR [--split auto|cityscapes]
        [--split-dir MANYDEPTH_SPLITS] [--workers N] [--overwrite] [--sample-gap 2]
        [--frame-offsets -1,1] [--test-frame-offsets -1] [--val random|official]
        [--val-fraction 0.1] [--seed 8964] [--resize 1024x384] [--image-format jpg|png]
        [--jpeg-quality 95] [--crop-bottom 0.25] [--verify-images] [--no-progress]

Exit codes: 0 done, 1 some samples were skipped (problem files in DIR/failed.txt), 2 bad
arguments, missing root, split files or cities named by a split. See
geo3d/converters/cityscapes/__init__.py and docs/datasets/cityscapes.md for the output format.
"""
from __future__ import annotations

import os
import sys

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.cityscapes import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
