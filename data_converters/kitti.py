"""Build split lists, info files and Eigen-style test ground truth from a KITTI raw tree.

Usage (from the repo root, no install needed)::

    python data_converters/kitti.py --root RAW --out DIR [--split auto|eigen_zhou|eigen|...]
        [--split-dir MONODEPTH2_SPLITS] [--workers N] [--overwrite] [--frame-offsets -1,1]
        [--sides l,r] [--val-drives 1] [--test-drives 1] [--gt-depth velo_x|cam_z]
        [--verify-images] [--no-progress]

Exit codes: 0 done, 1 some drive or frame failed (listed in DIR/failed.txt), 2 bad arguments,
missing root, split files or drives named by a split. See geo3d/converters/kitti/__init__.py
for the output format.
"""
from __future__ import annotations

import os
import sys

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.kitti import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
