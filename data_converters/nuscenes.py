"""Convert nuScenes into CAM_FRONT depth sequences (LiDAR ground truth for key frames,
day/night/rain evaluation subsets) and LIDAR_TOP point clouds (lidarseg labels, multi-sweep).

Usage (from the repo root, no install needed)::

    python data_converters/nuscenes.py --root DATAROOT --version v1.0-mini|v1.0-trainval
        --out OUT [--task depth|lidar|all] [--workers N] [--overwrite]
        [--val-scenes scene-0001,...] [--frame-offsets -1,1] [--min-speed 0.5]
        [--keyframes-only] [--min-dist 1.0] [--nsweeps 10] [--verify-images] [--no-progress]

Exit codes: 0 done, 1 some frame failed (listed in OUT/depth/failed.txt, OUT/lidar/failed.txt),
2 bad arguments or input. See geo3d/converters/nuscenes/__init__.py and docs/datasets/nuscenes.md
for the output format.
"""
from __future__ import annotations

import os
import sys

# this script's folder is sys.path[0] when run as `python data_converters/nuscenes.py`; its
# name would shadow the devkit's `nuscenes` package, so take the folder off the path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

try:
    import geo3d  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geo3d.converters.nuscenes import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
