"""Cityscapes video snippets -> sample lists, info files and test ground-truth depth, for
self-supervised depth (SfMLearner / ManyDepth / ProDepth conventions).

Input (the official downloads, see ``docs/datasets/cityscapes.md``)::

    ROOT/leftImg8bit_sequence/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png
                                    (30-frame snippets around each annotated frame *_000019)
    ROOT/camera/<split>/<city>/<city>_<seq>_<frame>_camera.json    (annotated frames:
                                    intrinsic fx, fy, u0, v0 [px]; extrinsic baseline [m])
    ROOT/disparity/<split>/<city>/<city>_<seq>_<frame>_disparity.png  (uint16, d = (p - 1) / 256,
                                    p = 0 invalid; needed for the test ground truth)

Output (``OUT``)::

    cities/<split>/<city>.json           per-city scan (frames per snippet, camera fields,
                                         disparity maps, problem files, listing fingerprint):
                                         the resume cache
    splits/<split>/<subset>_files.txt    ManyDepth lines "<city> <city>_<seq>_<frame>" (targets)
    splits/<split>/<subset>_info.json    {'raw_root', 'sample_gap', 'frame_offsets',
                                         'crop_bottom', 'images': {'root': 'raw'|'out', 'dir',
                                         'ext', 'cropped', 'size'}, 'gt_depth_dir',
                                         'frames': [{'split', 'city', 'seq', 'frame', 'stem',
                                         'image', 'width', 'height', 'crop_height',
                                         'intrinsics' [fx/W, fy/H', u0/W, v0/H'], 'baseline',
                                         'camera', 'gt_depth'}]}
    gt_depths/<city>/<stem>_depth.npy    test ground truth: (H, W) float32 metres at the full
                                         image size (1024x2048), baseline * fx / d, 0 = unknown
    images/<W>x<H>/<split>/<city>/<stem>_leftImg8bit.jpg   only with ``resize``: every used
                                         frame with its bottom 25 % cut, resized to W x H
    failed.txt                           one "where: file: reason; N sample(s) skipped" line per
                                         problem file

``<subset>`` is train / val / test; ``H' = round(0.75 H)`` (the bottom 25 %, the ego-car hood,
is cut, as ManyDepth). Frame offsets count ``sample_gap`` frames (offset -1 = t - 2 by default).
Re-runs reuse city scans whose folders did not change, keep valid ground-truth maps and
resized images, and rewrite text files only when they change; every file is written
atomically.

Modules: :mod:`.common` (names, constants, report), :mod:`.camera` (camera JSON, disparity ->
depth), :mod:`.scan` (one city), :mod:`.samples` (targets, neighbours, split files),
:mod:`.outputs` (ground truth, resized images), :mod:`.convert` (the driver), :mod:`.cli`.
"""
from .camera import (CityscapesCamera, disparity_to_depth, normalized_intrinsics,
                     read_camera_json, read_disparity)
from .cli import build_parser, main
from .common import (CONVERTER_VERSION, CROP_BOTTOM, ConvertReport, FrameName, InputError,
                     camera_relpath, crop_height, disparity_relpath, gt_relpath,
                     parse_frame_name, parse_stem, sequence_relpath)
from .convert import VAL_MODES, build_info, convert, load_cached_scan, scan_cities
from .outputs import gt_file_valid, write_gt_depth, write_resized_image
from .samples import (Sample, SplitLine, Target, build_samples, format_split_line,
                      random_snippet_split, read_split_file, resolve_camera, sequence_targets)
from .scan import CityScan, find_cities, listing_signature, scan_city

__all__ = [
    'CONVERTER_VERSION', 'CROP_BOTTOM', 'VAL_MODES', 'ConvertReport', 'InputError', 'FrameName',
    'parse_frame_name', 'parse_stem', 'sequence_relpath', 'camera_relpath', 'disparity_relpath',
    'gt_relpath', 'crop_height', 'CityscapesCamera', 'read_camera_json', 'normalized_intrinsics',
    'read_disparity', 'disparity_to_depth', 'CityScan', 'find_cities', 'listing_signature',
    'scan_city', 'SplitLine', 'read_split_file', 'format_split_line', 'Target', 'Sample',
    'resolve_camera', 'sequence_targets', 'random_snippet_split', 'build_samples',
    'gt_file_valid', 'write_gt_depth', 'write_resized_image', 'convert', 'scan_cities',
    'load_cached_scan', 'build_info', 'build_parser', 'main',
]
