"""pca_rgb on synthetic features; tools/visualize_features.py writes a PNG and a PLY."""
import os.path as osp

import numpy as np
import pytest
import torch

from geo3d.visualization.pca import pca_rgb
from tests.helpers.tools import ROOT, load_tool


def test_pca_rgb_separates_known_directions_despite_outliers():
    gen = torch.Generator().manual_seed(0)
    dirs = torch.linalg.qr(torch.randn(16, 3, generator=gen))[0].T         # 3 orthonormal (3, 16)
    groups = []
    for j in range(3):        # group j sits at +4 (first half) / -4 (second half) along dirs[j]
        z = torch.zeros(200, 3)
        z[:100, j], z[100:, j] = 4.0, -4.0
        groups.append(z)
    z = torch.cat(groups) * torch.tensor([3.0, 2.0, 1.0])                  # distinct variances
    feat = z @ dirs + 0.05 * torch.randn(600, 16, generator=gen)
    feat = torch.cat([feat, 1e4 * dirs[0].expand(3, 16)])                   # 3 huge outliers
    rgb = pca_rgb(feat, generator=gen)
    assert rgb.shape == (603, 3) and rgb.min() >= 0 and rgb.max() <= 1
    for j in range(3):   # component j separates group j's two halves
        a, b = rgb[200 * j:200 * j + 100, j].mean(), rgb[200 * j + 100:200 * (j + 1), j].mean()
        assert abs(float(a - b)) > 0.5
    # the outliers are clipped, not stretching the range: the bulk still spans the colours
    assert float(rgb[:600, 0].max() - rgb[:600, 0].min()) > 0.5
    assert torch.allclose(pca_rgb(torch.ones(10, 4)), torch.full((10, 3), 0.5))


@pytest.fixture(scope='module')
def tiny_scene(tmp_path_factory):
    from geo3d.converters.scannet import convert
    from geo3d.datasets.demo import make_demo_scannet
    tmp = tmp_path_factory.mktemp('vis')
    make_demo_scannet(str(tmp / 'raw'), num_train=1, num_val=1, num_test=0,
                      points_per_scene=3000)
    convert(str(tmp / 'raw'), str(tmp / 'data'), workers=1, progress=False, verbose=False)
    scene = open(tmp / 'data' / 'splits' / 'val.txt').read().split()[0]
    cfg = tmp / 'cfg.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/linear_probe_scannet_demo.py')!r}]
model = dict(backbone=dict(_delete_=True, type='SpUNet', in_channels=6, base_channels=8,
                           channels=(8, 16, 16, 8), layers=(1, 1, 1, 1), stem_kernel_size=3))
""")
    return tmp, tmp / 'data' / 'scenes' / scene, cfg


def _check_outputs(prefix, n):
    from plyfile import PlyData
    with open(f'{prefix}.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    v = PlyData.read(f'{prefix}.ply')['vertex']
    assert v.count == n and {'x', 'y', 'z', 'red', 'green', 'blue'} <= set(v.data.dtype.names)


def test_tool_on_converted_scene_and_npy(tiny_scene, capsys):
    tmp, scene, cfg = tiny_scene
    tool = load_tool('visualize_features')
    n = np.load(scene / 'coord.npy').shape[0]
    assert tool.main(['--config', str(cfg), '--checkpoint', 'none', '--scene', str(scene),
                      '--out', str(tmp / 'out' / 'scene')]) == 0
    _check_outputs(tmp / 'out' / 'scene', n)
    # a user's (N, 6) array without normals, nearest sampling
    arr = np.concatenate([np.load(scene / 'coord.npy'), np.load(scene / 'color.npy')], 1)
    np.save(tmp / 'pts.npy', arr.astype(np.float32))
    assert tool.main(['--config', str(cfg), '--checkpoint', 'none', '--points',
                      str(tmp / 'pts.npy'), '--out', str(tmp / 'out' / 'pts'),
                      '--mode', 'nearest']) == 0
    out = capsys.readouterr().out
    assert 'no normals in the input' in out and 'sampler mode nearest' in out
    _check_outputs(tmp / 'out' / 'pts', n)
