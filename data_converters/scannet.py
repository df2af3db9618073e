"""Convert raw ScanNet v2 scans into per-scene .npy arrays.

Usage (from the repo root, no install needed)::

    python data_converters/scannet.py --root RAW --out DIR [--workers N] [--overwrite]
        [--split-dir DIR] [--splits train,val,test] [--label-map TSV] [--no-progress]

Exit codes: 0 every scene converted (or done before), 1 some scene failed (listed in
DIR/failed.txt), 2 bad arguments, missing root, split files or label map.
See geo3d/converters/scannet/__init__.py for the output format.
"""
from __future__ import annotations

import os
import sys

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.scannet import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
