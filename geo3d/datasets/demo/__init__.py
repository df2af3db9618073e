"""Procedural indoor scenes written in the raw ScanNet v2 layout (demo / test data).

:func:`make_demo_scannet` writes ``OUT/scans/<id>/`` (train + val), ``OUT/scans_test/<id>/``
(test), ``OUT/scannetv2-labels.combined.tsv`` and ``OUT/scannetv2_{train,val,test}.txt`` exactly
as the official download lays them out (see ``shared/reference/dataset-formats.md`` §1), so the
real converter runs on them unchanged.

Each scene is a furnished room (rectangular or L-shaped, 3-7 m, walls 2.5-3 m) built from
subdivided triangle-mesh primitives in an axis-aligned room frame (floor z = 0). The mesh gets
positional noise, occlusion gaps (floor under furniture, walls behind it, random patches),
per-class colours with per-object and per-vertex variation, a voxel over-segmentation with
arbitrary segment ids, and an aggregation whose labels are real tsv raw categories. Raw
coordinates are ``inverse(axisAlignment) @ aligned``. Same seed -> byte-identical files.

Modules: :mod:`.labels` (tsv rows, palettes), :mod:`.primitives` (mesh patches and their
tessellation), :mod:`.layout` (room shape, walls, placement), :mod:`.furniture` (per-class
builders), :mod:`.shell` (floor, walls, doors, windows, pictures), :mod:`.recipes` (furniture per
room kind), :mod:`.scene` (assembly of one scene), :mod:`.writers` (raw ScanNet file formats),
:mod:`.dataset` (the whole dataset), :mod:`.frames` (RGB-D frames ray cast from inside each room,
written as ``<id>.sens``; off by default).
"""
# demo_scene_ids, PALETTES, RAW_IDS and SCENE_TYPES stay importable from here (not in __all__)
from .dataset import demo_scene_ids, make_demo_scannet  # noqa: F401
from .labels import (NYU40_PALETTE, PALETTES, RAW_IDS, SCENE_TYPES, TSV_COLUMNS,  # noqa: F401
                     TSV_ROWS)
from .frames import camera_trajectory, demo_intrinsics, render_rgbd, write_demo_sens
from .scene import DemoRoom, DemoScene, make_demo_scene
from .writers import write_label_tsv, write_ply_mesh, write_scannet_scene

__all__ = ['make_demo_scannet', 'make_demo_scene', 'write_scannet_scene', 'write_ply_mesh',
           'write_label_tsv', 'TSV_COLUMNS', 'TSV_ROWS', 'NYU40_PALETTE', 'DemoScene', 'DemoRoom',
           'write_demo_sens', 'render_rgbd', 'camera_trajectory', 'demo_intrinsics']

