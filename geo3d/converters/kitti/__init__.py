"""KITTI raw (synced drives) -> split lists, per-subset info files, Eigen-style ground truth.

Input (the official raw download as pykitti and Monodepth2 read it, see
``shared/reference/dataset-formats.md`` §2)::

    ROOT/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt     (keys R_rect_00, P_rect_02/03,
                                                                  S_rect_02/03; R, T)
    ROOT/<date>/<date>_drive_<dddd>_sync/image_02/data/%010d.png  (left colour; .jpg accepted)
                                         image_03/data/%010d.png  (right colour)
                                         velodyne_points/data/%010d.bin  (float32 N x 4)

Output (``OUT``)::

    drives/<date>/<drive>.json            per-drive scan (frames, image size, normalised K,
                                          stereo baseline, listing fingerprint): the resume cache
    splits/<split>/<subset>_files.txt     Monodepth2 lines "<date>/<drive> <frame> l|r"
                                          (test lines zero-padded as Eigen's test_files.txt)
    splits/<split>/<subset>_info.json     {'raw_root', 'drives': {...}, 'frames': [{'folder',
                                          'frame_index', 'side', 'cam', 'image',
                                          'stereo_image', 'width', 'height', 'intrinsics'
                                          [fx/W, fy/H, cx/W, cy/H], 'stereo_baseline' (m)}], ...}
    splits/<split>/gt_depths.npz          test ground truth: 'data' (N,) object array of (H, W)
                                          float32 maps at the raw size (Monodepth2's layout),
                                          'intrinsics' (N, 4, 4), 'lines' (N,), 'meta'
    splits/<split>/gt_dynamic_masks.npz   only for demo drives with moving objects
                                          (``dynamic_mask_demo/``): the test frames' masks,
                                          layout in :mod:`.dynamic`
    failed.txt                            one "drive: file: reason" line per problem

``<subset>`` is train / val / test; frames, lines and ground-truth maps are in the same order.
Re-runs skip drives whose cached scan still matches the drive's listing, keep a
``gt_depths.npz`` made for the same test lines, and rewrite text files only when they change.

Modules: :mod:`.common` (constants, errors, report), :mod:`.calib` (calibration),
:mod:`.velodyne` (scans and depth maps), :mod:`.drives` (drive discovery and checks),
:mod:`.splits` (split files, auto split), :mod:`.convert` (the driver), :mod:`.cli`.
"""
from .calib import KittiCalib, read_calib
from .cli import build_parser, main
from .common import (CONVERTER_VERSION, SIDE_TO_CAM, ConvertReport, DriveError, InputError,
                     image_relpath, velodyne_relpath)
from .convert import (GT_FILE, convert, export_gt_depths, export_gt_dynamic_masks,
                      gt_file_valid)
from .drives import DriveScan, find_drives, scan_drive
from .dynamic import GT_DYNAMIC_FILE
from .splits import (SplitLine, assign_auto_drives, auto_split_lines, find_split_files,
                     format_split_line, read_split_file)
from .velodyne import (check_velodyne_file, generate_depth_map, load_velodyne,
                       project_velodyne_to_depth)

__all__ = [
    'CONVERTER_VERSION', 'SIDE_TO_CAM', 'GT_FILE', 'ConvertReport', 'DriveError', 'InputError',
    'GT_DYNAMIC_FILE', 'export_gt_dynamic_masks',
    'KittiCalib', 'read_calib', 'DriveScan', 'find_drives', 'scan_drive', 'SplitLine',
    'read_split_file', 'format_split_line', 'find_split_files', 'assign_auto_drives',
    'auto_split_lines', 'check_velodyne_file', 'load_velodyne', 'project_velodyne_to_depth',
    'generate_depth_map', 'export_gt_depths', 'gt_file_valid', 'convert', 'build_parser', 'main',
    'image_relpath', 'velodyne_relpath',
]
