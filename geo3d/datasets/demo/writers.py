"""Writers of the raw ScanNet v2 file formats (PLY meshes, segs / aggregation JSON, scene
``.txt``, label tsv)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from plyfile import PlyData, PlyElement

from .labels import NYU40_PALETTE, TSV_COLUMNS, TSV_ROWS
from .scene import DemoScene

# ------------------------------------------------------------------------------------------------
# Writers (real raw ScanNet formats)


def write_ply_mesh(path: str | os.PathLike[str], coord: np.ndarray, color: np.ndarray,
                   faces: np.ndarray, label: np.ndarray | None = None,
                   comment: str = 'VCGLIB generated') -> None:
    """Write a binary little-endian PLY exactly like ScanNet's ``_vh_clean_2(.labels).ply``.

    Vertex properties x, y, z (float), red, green, blue, alpha (uchar) [, label (ushort)];
    face ``property list uchar int vertex_indices``. The header comes from plyfile; element data
    are packed with numpy (byte-identical to ``PlyData.write``, which loops in Python).

    Args:
        coord: (N, 3) float; color: (N, 3) uint8; faces: (F, 3) int; label: (N,) nyu40 ids.
    """
    n = len(coord)
    vdt = [('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'),
           ('blue', 'u1'), ('alpha', 'u1')]
    if label is not None:
        vdt.append(('label', '<u2'))
    vert = np.empty(n, dtype=vdt)
    vert['x'], vert['y'], vert['z'] = coord[:, 0], coord[:, 1], coord[:, 2]
    vert['red'], vert['green'], vert['blue'] = color[:, 0], color[:, 1], color[:, 2]
    vert['alpha'] = 255
    if label is not None:
        vert['label'] = label
    face = np.empty(len(faces), dtype=[('vertex_indices', '<i4', (3,))])
    face['vertex_indices'] = faces
    ply = PlyData([PlyElement.describe(vert, 'vertex'),
                   PlyElement.describe(face, 'face', len_types={'vertex_indices': 'u1'})],
                  text=False, byte_order='<', comments=[comment])
    packed = np.empty(len(faces), dtype=[('n', 'u1'), ('v', '<i4', (3,))])  # packed: 13 bytes
    packed['n'] = 3
    packed['v'] = faces
    with open(path, 'wb') as f:
        f.write(ply.header.encode('ascii') + b'\n')
        f.write(vert.tobytes())
        f.write(packed.tobytes())


def write_label_tsv(path: str | os.PathLike[str], categories: Sequence[str] | None = None) -> None:
    """Write ``scannetv2-labels.combined.tsv`` (17 real columns, LF) with the rows of
    ``categories`` (default: every row this module knows)."""
    names = list(TSV_ROWS) if categories is None else list(categories)
    lines = ['\t'.join(TSV_COLUMNS)] + ['\t'.join(TSV_ROWS[c]) for c in names]
    Path(path).write_text('\n'.join(lines) + '\n')


_SEGS_PARAMS = {'kThresh': '0.0001', 'segMinVerts': '20', 'minPoints': '750', 'maxPoints': '30000',
                'thinThresh': '0.05', 'flatThresh': '0.001', 'minLength': '0.02',
                'maxLength': '1'}


def _fmt(vals: Sequence[float]) -> str:
    return ' '.join(f'{float(v) + 0.0:.6f}' for v in vals)


def write_scannet_scene(scene_dir: str | os.PathLike[str], scene_id: str, scene: DemoScene,
                        labelled: bool = True, frames: int = 1000,
                        camera: tuple[tuple[int, int], np.ndarray] | None = None) -> None:
    """Write one scene's raw files into ``scene_dir`` (labelled: + segs, aggregation, labels).

    ``camera``: ``((width, height), K (3, 3))`` of rendered frames (colour and depth share it);
    the ``.txt`` then states that camera and ``frames`` as the frame counts. Without it the
    ``.txt`` holds a real scan's 1296x968 / 640x480 intrinsics.
    """
    d = Path(scene_dir)
    d.mkdir(parents=True, exist_ok=True)
    write_ply_mesh(d / f'{scene_id}_vh_clean_2.ply', scene.coord, scene.color, scene.faces)
    meta = []
    if labelled and scene.axis_align is not None:
        meta.append(f'axisAlignment = {_fmt(scene.axis_align.reshape(-1))}')
    ext = np.eye(4)
    if camera is None:
        cam = ['colorHeight = 968', f'colorToDepthExtrinsics = {_fmt(ext.reshape(-1))}',
               'colorWidth = 1296', 'depthHeight = 480', 'depthWidth = 640',
               'fx_color = 1170.187988', 'fx_depth = 571.623718', 'fy_color = 1170.187988',
               'fy_depth = 571.623718', 'mx_color = 647.750000', 'mx_depth = 319.500000',
               'my_color = 483.750000', 'my_depth = 239.500000']
    else:
        (w, h), K = camera
        fx, fy, cx, cy = (f'{float(v):.6f}' for v in (K[0][0], K[1][1], K[0][2], K[1][2]))
        cam = [f'colorHeight = {h}', f'colorToDepthExtrinsics = {_fmt(ext.reshape(-1))}',
               f'colorWidth = {w}', f'depthHeight = {h}', f'depthWidth = {w}',
               f'fx_color = {fx}', f'fx_depth = {fx}', f'fy_color = {fy}', f'fy_depth = {fy}',
               f'mx_color = {cx}', f'mx_depth = {cx}', f'my_color = {cy}', f'my_depth = {cy}']
    meta += cam + [f'numColorFrames = {frames}', f'numDepthFrames = {frames}',
                   f'numIMUmeasurements = {2 * frames + 7}', f'sceneType = {scene.scene_type}']
    (d / f'{scene_id}.txt').write_text('\n'.join(meta) + '\n')
    if not labelled:
        return
    segs = {'params': _SEGS_PARAMS, 'sceneId': f'{scene_id}_vh_clean_2',
            'segIndices': [int(s) for s in scene.seg_indices]}
    (d / f'{scene_id}_vh_clean_2.0.010000.segs.json').write_text(json.dumps(segs))
    agg = {'sceneId': f'scannet.{scene_id}', 'appId': 'Aggregator.v2',
           'segGroups': scene.seg_groups,
           'segmentsFile': f'scannet.{scene_id}_vh_clean_2.0.010000.segs.json'}
    (d / f'{scene_id}.aggregation.json').write_text(json.dumps(agg))
    write_ply_mesh(d / f'{scene_id}_vh_clean_2.labels.ply', scene.coord,
                   NYU40_PALETTE[np.clip(scene.nyu40, 0, 40)], scene.faces, label=scene.nyu40,
                   comment='MLIB generated')
