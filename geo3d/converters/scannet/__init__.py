"""ScanNet v2 raw scans -> per-scene ``.npy`` arrays.

Input (the official download, see ``shared/reference/dataset-formats.md`` §1)::

    ROOT/scans/<id>/        <id>_vh_clean_2.ply, <id>_vh_clean_2.labels.ply,
                            <id>_vh_clean_2.0.010000.segs.json, <id>.aggregation.json, <id>.txt
    ROOT/scans_test/<id>/   <id>_vh_clean_2.ply, <id>.txt   (no labels, no axisAlignment)
    ROOT/scannetv2-labels.combined.tsv
    ROOT/scannetv2_{train,val,test}.txt   (or ROOT/splits/..., or ``split_dir``)

Output::

    OUT/scenes/<id>/coord.npy              (N, 3) float32  raw vertex coordinates (not aligned)
                    color.npy              (N, 3) uint8
                    normal.npy             (N, 3) float32  unit area-weighted vertex normals
                    segment20.npy          (N,)   int16    0..19, -1 = ignore
                    segment200.npy         (N,)   int16    0..199, -1 = ignore
                    instance.npy           (N,)   int16    0-based segGroup id, -1 = no group
                    axis_align_matrix.npy  (4, 4) float32  aligned = A @ [x, y, z, 1]
                    frames/                only with --frames-every K: RGB-D frames, poses and
                                           intrinsics in the same raw frame (see :mod:`.frames`)
    OUT/splits/{train,val,test}.txt        converted scene ids, in split-file order
    OUT/meta.json                          label sets, counts, converter version
    OUT/failed.txt                         one line per failed scene (absent when none)

Each scene directory is written atomically, so an existing ``OUT/scenes/<id>/`` is complete and
a re-run skips it unless ``overwrite``.

Modules: :mod:`.common` (constants, exceptions, result records), :mod:`.readers` (tsv, split
lists, PLY / JSON / txt), :mod:`.geometry` (vertex normals), :mod:`.labels` (label derivation),
:mod:`.scene` (one scene), :mod:`.dataset` (the parallel driver and the index files),
:mod:`.cli` (command line), :mod:`.sens` (``.sens`` reader / writer), :mod:`.frames` (frame
sources, sampling and the ``frames/`` folder).
"""
# names beyond __all__ (build_parser, ARRAY_FILES, write_scene, ...) stay importable from here, as
# before the split into modules; _save_array is the test seam that write_scene looks up here
from .cli import build_parser, main  # noqa: F401
from .common import (ARRAY_FILES, CONVERTER_VERSION, MISMATCH_WARN,  # noqa: F401
                     SCENE_ID_RE, SPLIT_SOURCE, SPLITS, TSV_NAME, ConvertReport, InputError,
                     SceneError, SceneResult)
from .dataset import convert
from .geometry import compute_vertex_normals
from .labels import derive_labels, nyu40_to_scannet20, scannet200_index  # noqa: F401
from .readers import (find_split_file, read_aggregation, read_axis_alignment,  # noqa: F401
                      read_label_map, read_mesh, read_segs, read_split_files, read_vertex_labels,
                      scene_paths)
from .frames import (ExportedSource, FrameError, FrameOptions, SensSource,  # noqa: F401
                     open_frame_source, resize_intrinsics, select_frames, write_frames)
from .scene import (_save_array, convert_scene, convert_scene_frames,  # noqa: F401
                    process_scene, write_scene)
from .sens import SensError, SensReader, SensWriter  # noqa: F401

__all__ = [
    'CONVERTER_VERSION', 'SPLITS', 'SceneError', 'InputError', 'SceneResult', 'ConvertReport',
    'read_label_map', 'read_split_files', 'read_mesh', 'read_vertex_labels', 'read_segs',
    'read_aggregation', 'read_axis_alignment', 'compute_vertex_normals', 'derive_labels',
    'nyu40_to_scannet20', 'scene_paths', 'process_scene', 'convert_scene', 'convert', 'main',
]
