"""nuScenes (read with nuscenes-devkit 1.2.0) -> CAM_FRONT depth sequences with LiDAR ground
truth, and LIDAR_TOP point clouds for 3D pretraining.

Input (``shared/reference/dataset-formats.md`` §4)::

    ROOT/<version>/*.json                      the 13 tables (+ lidarseg.json, category.json
                                               with 'index' when nuScenes-lidarseg is unpacked)
    ROOT/samples/{CAM_FRONT,LIDAR_TOP}/...     key frames (.jpg, .pcd.bin: float32 N x 5)
    ROOT/sweeps/{CAM_FRONT,LIDAR_TOP}/...      non-key frames
    ROOT/maps/<token>.png                      must exist (the devkit checks at load)
    ROOT/lidarseg/<version>/<token>_lidarseg.bin   uint8 fine class per key-frame point

Output (``OUT``)::

    depth/scenes/<scene>.json          CAM_FRONT chain of the scene (key frames and sweeps):
                                       token, image, timestamp, K (3x3), global_from_cam (4x4),
                                       ego speed, key frames' LiDAR token and cam_from_lidar;
                                       scene description and tags (day / night / rain)
    depth/gt/<scene>/<cam token>.npz   sparse LiDAR depth of each key frame at the native
                                       image size (:mod:`.sparse_depth`; minimum depth wins)
    depth/splits/<subset>_info.json    train: frames with all neighbours (and min speed);
                                       val (test for v1.0-test): key frames with ground truth;
                                       {day,night,rain}_<subset>_info.json: condition subsets
                                       of val/test. Header: version, split source, raw_root,
                                       frame_offsets; 'scenes' and 'frames': [{'scene',
                                       'chain_index', 'token', 'sample_token', 'timestamp',
                                       'is_key_frame', 'image', 'width', 'height',
                                       'intrinsics' [fx/W, fy/H, cx/W, cy/H], 'ego_speed',
                                       'tags', 'neighbours' {offset: {'token', 'image',
                                       'timestamp', 'is_key_frame', 'T' (4x4 target camera ->
                                       neighbour camera)}}, 'gt_depth' (relative path or None),
                                       'gt_points'}]
    depth/failed.txt                   "scene: file: reason" per skipped frame
    lidar/scenes/<scene>_<kkk>/        one key frame (k-th of its scene): coord.npy (N, 3)
                                       float32 in the key frame's LIDAR_TOP frame,
                                       intensity.npy (N,) float32, time.npy (N,) float32 lag (s),
                                       segment.npy (N,) int16 (16 lidarseg classes, -1 ignore),
                                       meta.json (tokens, sweeps used)
    lidar/splits/{train,val,test}.txt  frame folder names
    lidar/meta.json                    class names, ignore index, options, counts
    lidar/failed.txt

Re-runs keep ground-truth files and frame folders written by this converter version with the
same options (``overwrite`` rewrites them) and rewrite text files only when they change. Every
file and frame folder is written atomically.

Modules: :mod:`.common` (constants, errors, report), :mod:`.tables` (devkit loading, splits,
poses, chains), :mod:`.sparse_depth` (ground-truth format), :mod:`.depth` (camera chains,
projection, info records), :mod:`.lidar` (sweeps, lidarseg), :mod:`.convert` (the driver),
:mod:`.cli`.
"""
from .cli import build_parser, main
from .common import (CONVERTER_VERSION, OFFICIAL_SPLITS, ConvertReport, FrameError, InputError,
                     TaskReport, scene_tags)
from .convert import convert, info_name
from .depth import project_lidar_to_depth, relative_pose, scan_camera_scene
from .lidar import aggregate_sweeps, frame_name, lidarseg_classes_and_lut, plan_lidar_scene
from .sparse_depth import load_sparse_depth, rasterize_min_depth, save_sparse_depth
from .tables import assign_scenes, load_nuscenes, sensor_chain

__all__ = [
    'CONVERTER_VERSION', 'OFFICIAL_SPLITS', 'ConvertReport', 'TaskReport', 'FrameError',
    'InputError', 'scene_tags', 'convert', 'info_name', 'build_parser', 'main',
    'project_lidar_to_depth', 'relative_pose', 'scan_camera_scene', 'aggregate_sweeps',
    'frame_name', 'lidarseg_classes_and_lut', 'plan_lidar_scene', 'load_sparse_depth',
    'rasterize_min_depth', 'save_sparse_depth', 'assign_scenes', 'load_nuscenes',
    'sensor_chain',
]
