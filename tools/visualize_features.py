#!/usr/bin/env python
"""Look at frozen backbone features: PCA of the sampled per-point features as colours.

``python tools/visualize_features.py --config CFG --checkpoint CKPT|none
(--scene CONVERTED_SCENE_DIR | --points FILE.ply|FILE.npy) --out OUT_PREFIX
[--mode trilinear|nearest]``

The config's ``model.backbone``/``model.sampler`` (a linear-probe config) define the features;
the input is voxelized with the config's val pipeline. Writes ``OUT_PREFIX.png`` (input colours
next to the PCA colours, oblique view) and ``OUT_PREFIX.ply`` (xyz + PCA rgb). A ``.ply`` needs
x, y, z, red, green, blue (nx, ny, nz optional); a ``.npy`` is (N, 6) xyz + rgb 0..255 or
(N, 9) with normals. Missing normals are estimated with open3d when it is installed, else zeros
(the tool says which).
"""
from __future__ import annotations

import argparse
import copy
import os
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import geo3d.datasets  # noqa: E402,F401
import geo3d.models  # noqa: E402,F401
from geo3d.datasets.collate import point_collate  # noqa: E402
from geo3d.datasets.transforms.point import build_pipeline  # noqa: E402
from geo3d.models.probes import FrozenFeatureExtractor  # noqa: E402
from geo3d.visualization.pca import pca_rgb  # noqa: E402


def estimate_normals(coord: np.ndarray, radius: float = 0.1) -> tuple[np.ndarray, str]:
    """(N, 3) unit normals from open3d (radius search), or zeros without open3d."""
    try:
        import open3d as o3d
    except Exception:  # noqa: BLE001 (open3d may fail to import for system-library reasons)
        return np.zeros_like(coord, dtype=np.float32), 'zeros (open3d not available)'
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(coord.astype(np.float64)))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=30))
    return np.asarray(pcd.normals, dtype=np.float32), 'estimated with open3d'


def load_points(path: str) -> dict[str, np.ndarray]:
    """coord (N, 3), color (N, 3) 0..255 and normal (N, 3) or None from a .ply or .npy."""
    if path.endswith('.npy'):
        arr = np.load(path, allow_pickle=False)
        if arr.ndim != 2 or arr.shape[1] not in (6, 9):
            raise SystemExit(f'error: {path} must be (N, 6) or (N, 9), got {arr.shape}')
        color = arr[:, 3:6].astype(np.float32)
        if color.max(initial=0) <= 1.0:
            color = color * 255.0
        return {'coord': arr[:, :3].astype(np.float32), 'color': color,
                'normal': arr[:, 6:9].astype(np.float32) if arr.shape[1] == 9 else None}
    if path.endswith('.ply'):
        from plyfile import PlyData
        v = PlyData.read(path)['vertex']
        names = v.data.dtype.names
        if not all(k in names for k in ('x', 'y', 'z', 'red', 'green', 'blue')):
            raise SystemExit(f'error: {path} needs vertex x, y, z, red, green, blue; has {names}')
        normal = np.stack([v['nx'], v['ny'], v['nz']], 1).astype(np.float32) \
            if all(k in names for k in ('nx', 'ny', 'nz')) else None
        return {'coord': np.stack([v['x'], v['y'], v['z']], 1).astype(np.float32),
                'color': np.stack([v['red'], v['green'], v['blue']], 1).astype(np.float32),
                'normal': normal}
    raise SystemExit(f'error: --points must be a .ply or .npy file, got {path}')


def load_scene(scene_dir: str) -> dict[str, np.ndarray]:
    """A converted scene directory (coord.npy, color.npy, normal.npy)."""
    def get(name: str) -> np.ndarray | None:
        p = osp.join(scene_dir, f'{name}.npy')
        return np.load(p).astype(np.float32) if osp.isfile(p) else None
    coord = get('coord')
    if coord is None:
        raise SystemExit(f'error: {scene_dir} has no coord.npy (not a converted scene)')
    return {'coord': coord, 'color': get('color'), 'normal': get('normal')}


@torch.no_grad()
def point_features(cfg: Config, extractor: FrozenFeatureExtractor,
                   data: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxel features (M, C) and the (N,) voxel of every input point, via the val pipeline."""
    n = data['coord'].shape[0]
    sample = {'coord': data['coord'].copy(), 'color': data['color'].copy(),
              'normal': data['normal'].copy(), 'segment': np.full(n, -1, dtype=np.int64),
              'instance': np.full(n, -1, dtype=np.int64), 'name': 'input'}
    sample = build_pipeline(copy.deepcopy(cfg.val_dataloader.dataset.pipeline))(sample)
    batch = point_collate([sample])['inputs']
    if 'inverse' not in batch:
        raise SystemExit('error: the config\'s val pipeline must voxelize with '
                         'GridSample(mode="test") (it returns no "inverse")')
    return extractor(batch), batch['inverse']


def render(coord: np.ndarray, colors: Sequence[np.ndarray], titles: Sequence[str], path: str,
           max_points: int = 80000, seed: int = 0) -> None:
    """Side-by-side oblique 3D scatter plots of the same points with different colours."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    idx = rng.permutation(coord.shape[0])[:max_points]
    xyz = coord[idx]
    span = np.maximum(xyz.max(0) - xyz.min(0), 1e-3)
    size = float(np.clip(2.5e5 / max(len(idx), 1), 1.0, 12.0))   # denser look for few points
    fig = plt.figure(figsize=(7 * len(colors), 6.5), dpi=110)
    for i, (col, title) in enumerate(zip(colors, titles)):
        ax = fig.add_subplot(1, len(colors), i + 1, projection='3d')
        ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=np.clip(col[idx], 0, 1), s=size,
                   marker='.', linewidths=0, depthshade=False)
        ax.set_box_aspect(tuple(span), zoom=1.35)
        ax.view_init(elev=50, azim=-60)
        ax.set_axis_off()
        ax.set_title(title)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.93, wspace=0)
    fig.savefig(path)
    plt.close(fig)


def write_ply(path: str, coord: np.ndarray, rgb: np.ndarray) -> None:
    from plyfile import PlyData, PlyElement
    v = np.empty(coord.shape[0], dtype=[('x', 'f4'), ('y', 'f4'), ('z', 'f4'),
                                        ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])
    v['x'], v['y'], v['z'] = coord[:, 0], coord[:, 1], coord[:, 2]
    c = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    v['red'], v['green'], v['blue'] = c[:, 0], c[:, 1], c[:, 2]
    PlyData([PlyElement.describe(v, 'vertex')], text=False).write(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='PCA colours of frozen backbone features')
    parser.add_argument('--config', required=True)
    parser.add_argument('--checkpoint', required=True, help='backbone checkpoint or "none"')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--scene', help='a converted scene directory (coord.npy, color.npy, ...)')
    src.add_argument('--points', help='a .ply or .npy point cloud')
    parser.add_argument('--out', required=True, help='output prefix (writes .png and .ply)')
    parser.add_argument('--mode', choices=['trilinear', 'nearest'], default=None,
                        help='sampler mode (default: the config\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    data = load_scene(args.scene) if args.scene else load_points(args.points)
    n = data['coord'].shape[0]
    if data['color'] is None:
        data['color'] = np.full((n, 3), 127.5, dtype=np.float32)
        print('no colours in the input: using grey')
    if data['normal'] is None:
        data['normal'], how = estimate_normals(data['coord'])
        print(f'no normals in the input: {how}')
    data['normal'] = np.nan_to_num(data['normal'])
    sampler = dict(copy.deepcopy(cfg.model.get('sampler') or {}))
    if args.mode:
        sampler['mode'] = args.mode
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    extractor = FrozenFeatureExtractor(copy.deepcopy(cfg.model.backbone), sampler, ckpt).eval()
    feat, inverse = point_features(cfg, extractor, data)
    rgb = pca_rgb(feat, generator=torch.Generator().manual_seed(0))[inverse].numpy()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    label = 'random backbone' if ckpt is None else osp.basename(ckpt)
    render(data['coord'], [data['color'] / 255.0, rgb],
           ['input colours', f'PCA of {feat.shape[1]}-D features ({label})'], args.out + '.png')
    write_ply(args.out + '.ply', data['coord'], rgb)
    print(f'wrote {args.out}.png and {args.out}.ply ({n} points, {feat.shape[0]} voxels, '
          f'{feat.shape[1]}-D features, sampler mode {extractor.sampler.mode})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
