"""Point transforms: closed-form values, shapes, per-point field consistency, multi-view indices."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from geo3d.datasets.transforms import (BoxCrop, CenterShift, ChromaticAutoContrast,
                                       ChromaticJitter, ChromaticTranslation, Collect, GridSample,
                                       MultiViewGenerator, NormalizeColor, RandomFlip,
                                       RandomJitter, RandomRotate, RandomScale, SphereCrop,
                                       build_pipeline, per_point_keys)
from geo3d.registry import TRANSFORMS


def scene(n: int = 500, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    coord = rng.uniform([-1, 2, 0.5], [3, 5, 2.5], size=(n, 3)).astype(np.float32)
    normal = rng.normal(size=(n, 3))
    normal = (normal / np.linalg.norm(normal, axis=1, keepdims=True)).astype(np.float32)
    return {
        'coord': coord,
        'color': rng.integers(20, 230, size=(n, 3)).astype(np.float32),
        'normal': normal,
        'segment': rng.integers(-1, 20, size=n).astype(np.int64),
        'instance': rng.integers(-1, 10, size=n).astype(np.int64),
        # an unknown per-point field that must follow every point selection
        'pid': np.arange(n, dtype=np.int64) * 10,
        'name': 'scene0000_00',
    }


def assert_consistent(out: dict, src: dict) -> np.ndarray:
    """All per-point fields of ``out`` are rows of ``src`` selected by the same index."""
    idx = out['pid'] // 10
    for k in ('color', 'segment', 'instance'):
        np.testing.assert_array_equal(out[k], src[k][idx])
    assert out['name'] == src['name']
    return idx


# ----------------------------------------------------------------------------- registry
def test_all_transforms_registered():
    for name in ('CenterShift', 'RandomRotate', 'RandomScale', 'RandomFlip', 'RandomJitter',
                 'ChromaticAutoContrast', 'ChromaticTranslation', 'ChromaticJitter',
                 'NormalizeColor', 'GridSample', 'SphereCrop', 'BoxCrop', 'Collect',
                 'MultiViewGenerator'):
        assert TRANSFORMS.get(name) is not None, name


def test_per_point_keys_excludes_origin_inverse_and_meta():
    d = scene(4)
    d['inverse'] = np.zeros(4, np.int64)
    d['origin_segment'] = np.zeros(4, np.int64)
    d['axis_align_matrix'] = np.eye(4)
    assert set(per_point_keys(d)) == {'coord', 'color', 'normal', 'segment', 'instance', 'pid'}


# ----------------------------------------------------------------------------- geometry
def test_center_shift():
    d = scene()
    lo = d['coord'].min(0)
    out = CenterShift(apply_z=True)(dict(d))
    np.testing.assert_allclose((out['coord'].min(0) + out['coord'].max(0))[:2], 0, atol=1e-5)
    assert abs(out['coord'][:, 2].min()) < 1e-6
    np.testing.assert_allclose(out['coord'][:, 2], d['coord'][:, 2] - lo[2], atol=1e-5)
    out = CenterShift(apply_z=False)(dict(d))
    np.testing.assert_allclose(out['coord'][:, 2], d['coord'][:, 2])
    np.testing.assert_allclose((out['coord'].min(0) + out['coord'].max(0))[:2], 0, atol=1e-5)
    assert out['coord'].dtype == np.float32


def test_rotate_quarter_turn_about_z():
    d = {'coord': np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
         'normal': np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)}
    out = RandomRotate(angle=(0.5, 0.5), axis='z', center=(0, 0, 0))(d)
    expected = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], np.float32)
    np.testing.assert_allclose(out['coord'], expected, atol=1e-6)
    np.testing.assert_allclose(out['normal'], expected, atol=1e-6)


@pytest.mark.parametrize('axis', ['x', 'y', 'z'])
def test_rotate_is_rigid_and_about_bbox_center(axis):
    d = scene(200)
    c0 = (d['coord'].min(0) + d['coord'].max(0)) / 2
    out = RandomRotate(angle=(-1, 1), axis=axis, seed=0)(dict(d))
    # distances to the (fixed) rotation centre and between points are preserved
    np.testing.assert_allclose(np.linalg.norm(out['coord'] - c0, axis=1),
                               np.linalg.norm(d['coord'] - c0, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out['coord'][1:] - out['coord'][:-1], axis=1),
                               np.linalg.norm(d['coord'][1:] - d['coord'][:-1], axis=1),
                               rtol=1e-5, atol=1e-5)
    # normals are rotated with the points: same rotation maps coord offsets and normals
    a = {'x': 0, 'y': 1, 'z': 2}[axis]
    np.testing.assert_allclose(out['coord'][:, a], d['coord'][:, a], atol=1e-5)
    np.testing.assert_allclose(out['normal'][:, a], d['normal'][:, a], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out['normal'], axis=1), 1, atol=1e-5)
    rot, *_ = np.linalg.lstsq(d['coord'] - c0, out['coord'] - c0, rcond=None)
    np.testing.assert_allclose(d['normal'] @ rot, out['normal'], atol=1e-4)


def test_rotate_probability_zero_is_identity():
    d = scene(10)
    out = RandomRotate(p=0.0)(dict(d))
    np.testing.assert_array_equal(out['coord'], d['coord'])
    with pytest.raises(ValueError):
        RandomRotate(axis='w')


def test_scale_keeps_centroid_when_centred():
    d = scene()
    d['coord'] = d['coord'] - d['coord'].mean(0)
    out = RandomScale(scale=(0.5, 2.0), seed=1)(dict(d))
    np.testing.assert_allclose(out['coord'].mean(0), 0, atol=1e-5)
    ratio = out['coord'] / d['coord']
    assert np.allclose(ratio, ratio[0, 0], rtol=1e-5) and 0.5 <= ratio[0, 0] <= 2.0
    np.testing.assert_array_equal(out['normal'], d['normal'])


def test_anisotropic_scale_transforms_normals():
    # the plane x + y = 1 with normal (1, 1, 0)/sqrt2, scaled by (sx, sy, sz)
    t = np.linspace(0, 1, 20)
    coord = np.stack([t, 1 - t, np.zeros_like(t)], 1).astype(np.float32)
    normal = np.tile(np.array([[1, 1, 0]], np.float32) / math.sqrt(2), (20, 1))
    out = RandomScale(scale=(0.5, 2.0), anisotropic=True, seed=3)({'coord': coord,
                                                                     'normal': normal})
    tangent = out['coord'][-1] - out['coord'][0]
    assert np.abs(out['normal'] @ tangent).max() < 1e-5       # still perpendicular to surface
    np.testing.assert_allclose(np.linalg.norm(out['normal'], axis=1), 1, atol=1e-5)


def test_flip_each_axis_independently():
    d = {'coord': np.array([[1, 2, 3]], np.float32), 'normal': np.array([[4, 5, 6]], np.float32)}
    out = RandomFlip(p=1.0)(dict(d))
    np.testing.assert_array_equal(out['coord'], [[-1, -2, 3]])
    np.testing.assert_array_equal(out['normal'], [[-4, -5, 6]])
    out = RandomFlip(p=0.0)(dict(d))
    np.testing.assert_array_equal(out['coord'], d['coord'])
    seen = set()
    flip = RandomFlip(p=0.5, seed=0)
    for _ in range(60):
        o = flip(dict(d))
        seen.add((float(o['coord'][0, 0]), float(o['coord'][0, 1])))
        assert o['coord'][0, 0] * o['normal'][0, 0] > 0 and o['coord'][0, 1] * o['normal'][0, 1] > 0
    assert seen == {(1, 2), (-1, 2), (1, -2), (-1, -2)}
    np.testing.assert_array_equal(d['coord'], [[1, 2, 3]])    # input arrays not modified


def test_jitter_bounded_by_clip():
    d = scene(2000)
    out = RandomJitter(sigma=0.05, clip=0.02, seed=0)(dict(d))
    delta = out['coord'] - d['coord']
    assert np.abs(delta).max() <= 0.02 + 1e-6
    assert np.abs(delta).max() > 0.019                          # clipping is active
    out = RandomJitter(sigma=0.001, clip=1.0, seed=0)(dict(d))
    assert 0.0007 < (out['coord'] - d['coord']).std() < 0.0013
    with pytest.raises(ValueError):
        RandomJitter(clip=0)


# ----------------------------------------------------------------------------- colour
def test_auto_contrast_full_blend_stretches_to_full_range():
    d = scene()
    out = ChromaticAutoContrast(p=1.0, blend_factor=1.0)(dict(d))
    np.testing.assert_allclose(out['color'].min(0), 0, atol=1e-4)
    np.testing.assert_allclose(out['color'].max(0), 255, atol=1e-3)
    lo, hi = d['color'].min(0), d['color'].max(0)
    np.testing.assert_allclose(out['color'], (d['color'] - lo) / (hi - lo) * 255, rtol=1e-5)
    half = ChromaticAutoContrast(p=1.0, blend_factor=0.5)(dict(d))
    np.testing.assert_allclose(half['color'], (out['color'] + d['color']) / 2, rtol=1e-5)
    same = ChromaticAutoContrast(p=0.0)(dict(d))
    np.testing.assert_array_equal(same['color'], d['color'])
    flat = {'color': np.full((5, 3), 7.0, np.float32)}
    np.testing.assert_array_equal(ChromaticAutoContrast(p=1.0, blend_factor=1.0)(flat)['color'],
                                  7.0)


def test_chromatic_translation_shifts_all_points_equally():
    d = scene()
    out = ChromaticTranslation(p=1.0, ratio=0.05, seed=0)(dict(d))
    delta = out['color'] - d['color']          # no clipping: colours are in 20..230
    np.testing.assert_allclose(delta, np.broadcast_to(delta[0], delta.shape), atol=1e-4)
    assert np.all(np.abs(delta[0]) <= 0.05 * 255 + 1e-4)
    clipped = ChromaticTranslation(p=1.0, ratio=1.0, seed=0)(dict(d))['color']
    assert clipped.min() >= 0 and clipped.max() <= 255


def test_chromatic_jitter_std_and_clip():
    d = scene(5000)
    d['color'][:] = 128
    out = ChromaticJitter(p=1.0, std=0.05, seed=0)(dict(d))
    assert abs((out['color'] - 128).std() - 0.05 * 255) < 0.5
    out = ChromaticJitter(p=1.0, std=1.0, seed=0)(dict(d))
    assert out['color'].min() >= 0 and out['color'].max() <= 255
    np.testing.assert_array_equal(ChromaticJitter(p=0.0)(dict(d))['color'], d['color'])


def test_normalize_color_range():
    d = {'color': np.array([[0, 127.5, 255]], np.float32)}
    out = NormalizeColor()(d)
    np.testing.assert_allclose(out['color'], [[-1, 0, 1]])
    assert out['color'].dtype == np.float32


# ----------------------------------------------------------------------------- GridSample
def _slow_voxels(coord: np.ndarray, grid: float) -> dict:
    groups = defaultdict(list)
    for i, c in enumerate(coord.tolist()):
        groups[tuple(math.floor(x / grid) for x in c)].append(i)
    return groups


@pytest.mark.parametrize('sample', ['random', 'first', 'mean'])
def test_grid_sample_train(sample):
    d = scene(800)
    out = GridSample(grid_size=0.25, sample=sample, seed=0)(dict(d))
    groups = _slow_voxels(d['coord'], 0.25)
    m = len(groups)
    assert out['coord'].shape == (m, 3) and out['grid_coord'].shape == (m, 3)
    assert out['grid_coord'].dtype == np.int64 and out['grid_coord'].min() == 0
    assert out['grid_size'] == 0.25 and 'inverse' not in out
    gmin = np.floor(d['coord'] / 0.25).astype(np.int64).min(0)
    for r in range(m):
        members = groups[tuple(out['grid_coord'][r] + gmin)]
        idx = out['pid'][r] // 10
        assert idx == members[0] if sample != 'random' else idx in members
        assert out['segment'][r] == d['segment'][idx] and out['instance'][r] == d['instance'][idx]
        if sample == 'mean':
            np.testing.assert_allclose(out['coord'][r], d['coord'][members].mean(0), atol=1e-5)
            np.testing.assert_allclose(out['color'][r], d['color'][members].mean(0), rtol=1e-5)
        else:
            np.testing.assert_array_equal(out['coord'][r], d['coord'][idx])
            np.testing.assert_array_equal(out['color'][r], d['color'][idx])


def test_grid_sample_test_mode_keeps_origin_and_inverse():
    d = scene(600)
    out = GridSample(grid_size=0.3, mode='test', sample='first')(dict(d))
    inv = out['inverse']
    assert inv.shape == (600,) and inv.max() == out['coord'].shape[0] - 1
    np.testing.assert_array_equal(out['origin_segment'], d['segment'])
    # every original point lands in the voxel of its own grid coordinate
    g = np.floor(d['coord'] / 0.3).astype(np.int64)
    np.testing.assert_array_equal(out['grid_coord'][inv], g - g.min(0))
    with pytest.raises(ValueError, match='inverse'):
        SphereCrop(point_max=10)(out)
    # a second voxelization composes the maps
    out2 = GridSample(grid_size=0.6, sample='first')(out)
    g2 = np.floor(d['coord'] / 0.6).astype(np.int64)
    np.testing.assert_array_equal(out2['grid_coord'][out2['inverse']], g2 - g2.min(0))


def test_grid_sample_random_uses_global_numpy_seed():
    d = scene(300)
    t = GridSample(grid_size=0.5, sample='random')
    np.random.seed(5)
    a = t(dict(d))['pid']
    np.random.seed(5)
    b = t(dict(d))['pid']
    c = t(dict(d))['pid']
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


# ----------------------------------------------------------------------------- crops
@pytest.mark.parametrize('mode', ['random', 'center'])
def test_sphere_crop_budget_and_consistency(mode):
    d = scene(1000)
    out = SphereCrop(point_max=300, mode=mode, seed=0)(dict(d))
    assert out['coord'].shape == (300, 3)
    idx = assert_consistent(out, d)
    assert np.all(np.diff(idx) > 0)                              # original order kept
    np.testing.assert_array_equal(out['coord'], d['coord'][idx])
    np.testing.assert_array_equal(out['normal'], d['normal'][idx])
    # the kept points are the nearest to some centre: kept radius <= dropped radius
    if mode == 'center':
        c = (d['coord'].min(0) + d['coord'].max(0)) / 2
        r = np.linalg.norm(d['coord'] - c, axis=1)
        dropped = np.setdiff1d(np.arange(1000), idx)
        assert r[idx].max() <= r[dropped].min() + 1e-6
    small = SphereCrop(point_max=2000)(dict(d))
    assert small['coord'].shape[0] == 1000
    rate = SphereCrop(sample_rate=0.25, point_max=10 ** 9, seed=0)(dict(d))
    assert rate['coord'].shape[0] == 250


def test_box_crop_metric_and_relative():
    d = scene(2000)
    out = BoxCrop(size=(1.0, 1.0, None), center='center')(dict(d))
    c = (d['coord'].min(0) + d['coord'].max(0)) / 2
    inside = np.all(np.abs(d['coord'][:, :2] - c[:2]) <= 0.5, axis=1)
    idx = assert_consistent(out, d)
    np.testing.assert_array_equal(idx, np.nonzero(inside)[0])
    ext = d['coord'].max(0) - d['coord'].min(0)
    rel = BoxCrop(size=0.5, relative=True, seed=0)(dict(d))
    idx = assert_consistent(rel, d)
    assert 0 < len(idx) < 2000
    span = rel['coord'].max(0) - rel['coord'].min(0)
    assert np.all(span <= 0.5 * ext + 1e-5)
    with pytest.raises(ValueError):
        BoxCrop(size=(1, -1, None))


# ----------------------------------------------------------------------------- Collect
def test_collect_builds_feat():
    d = scene(10)
    out = Collect(keys=('coord', 'segment'), feat_keys=('color', 'normal'))(dict(d))
    assert set(out) == {'coord', 'segment', 'feat', 'name'}
    assert out['feat'].shape == (10, 6) and out['feat'].dtype == np.float32
    np.testing.assert_allclose(out['feat'], np.concatenate([d['color'], d['normal']], 1))
    with pytest.raises(KeyError, match='grid_coord'):
        Collect()(dict(d))


# ----------------------------------------------------------------------------- pipelines
def test_training_pipeline_from_configs():
    pipeline = build_pipeline([
        dict(type='CenterShift', apply_z=True),
        dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
        dict(type='RandomScale', scale=(0.9, 1.1)),
        dict(type='RandomFlip', p=0.5),
        dict(type='RandomJitter', sigma=0.005, clip=0.02),
        dict(type='ChromaticAutoContrast', p=0.2),
        dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
        dict(type='ChromaticJitter', p=0.95, std=0.05),
        dict(type='GridSample', grid_size=0.05, mode='train', sample='random'),
        dict(type='SphereCrop', point_max=200, mode='random'),
        dict(type='CenterShift', apply_z=False),
        dict(type='NormalizeColor'),
        dict(type='Collect', keys=('coord', 'grid_coord', 'segment'),
             feat_keys=('color', 'normal')),
    ])
    d = scene(3000)
    out = pipeline(d)
    assert set(out) == {'coord', 'grid_coord', 'segment', 'feat', 'name', 'grid_size'}
    n = out['coord'].shape[0]
    assert n == 200
    assert out['feat'].shape == (n, 6) and out['segment'].shape == (n,)
    assert out['feat'][:, :3].min() >= -1 and out['feat'][:, :3].max() <= 1


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    a = np.concatenate([src, np.ones((len(src), 1))], 1).astype(np.float64)
    m, *_ = np.linalg.lstsq(a, dst.astype(np.float64), rcond=None)
    return m, float(np.abs(a @ m - dst).max())


def test_multi_view_indices_point_to_original_points():
    d = scene(3000, seed=4)
    gen = MultiViewGenerator(view_pipeline=[
        dict(type='RandomRotate', angle=(-1, 1), axis='z'),
        dict(type='RandomScale', scale=(0.8, 1.2)),
        dict(type='RandomFlip', p=0.5),
        dict(type='SphereCrop', sample_rate=0.6, mode='random'),
        dict(type='GridSample', grid_size=0.1, sample='random'),
        dict(type='CenterShift', apply_z=False),
    ], num_views=2)
    np.random.seed(0)
    out = gen(dict(d))
    assert set(out) == {'view0', 'view1', 'view0_index', 'view1_index', 'name'}
    maps = []
    for i in range(2):
        v, idx = out[f'view{i}'], out[f'view{i}_index']
        assert idx.dtype == np.int64 and idx.shape == (v['coord'].shape[0],)
        assert 'index' not in v
        # per-point fields follow the original points
        np.testing.assert_array_equal(v['segment'], d['segment'][idx])
        np.testing.assert_array_equal(v['pid'], d['pid'][idx])
        np.testing.assert_array_equal(v['raw_coord'], d['coord'][idx])
        # view coordinates are one similarity transform of the original coordinates
        m, err = _fit_affine(d['coord'][idx], v['coord'])
        assert err < 1e-4
        maps.append(m)
    assert not np.allclose(maps[0], maps[1])                   # independent augmentations
    i0, i1 = set(out['view0_index'].tolist()), set(out['view1_index'].tolist())
    common = i0 & i1
    assert 0 < len(common) < min(len(i0), len(i1))            # partial overlap
    # a shared original point maps to consistent coordinates in both views
    k = next(iter(common))
    r0 = int(np.nonzero(out['view0_index'] == k)[0][0])
    r1 = int(np.nonzero(out['view1_index'] == k)[0][0])
    x = np.append(d['coord'][k], 1.0)
    np.testing.assert_allclose(out['view0']['coord'][r0], x @ maps[0], atol=1e-4)
    np.testing.assert_allclose(out['view1']['coord'][r1], x @ maps[1], atol=1e-4)


def test_multi_view_with_collect_and_selected_keys():
    d = scene(400)
    gen = MultiViewGenerator(view_pipeline=[
        dict(type='BoxCrop', size=0.7, relative=True),
        dict(type='GridSample', grid_size=0.2, sample='mean'),
        dict(type='Collect', keys=('coord', 'grid_coord', 'index'), feat_keys=('color',)),
    ], num_views=3, keys=('coord', 'color'), raw_coord=False)
    out = gen(dict(d))
    assert {f'view{i}' for i in range(3)} <= set(out)
    for i in range(3):
        v = out[f'view{i}']
        assert set(v) == {'coord', 'grid_coord', 'feat', 'grid_size'}
        assert out[f'view{i}_index'].max() < 400
    bad = MultiViewGenerator(view_pipeline=[dict(type='Collect', keys=('coord',),
                                                 feat_keys=())])
    with pytest.raises(KeyError, match='index'):
        bad(dict(d))
    with pytest.raises(KeyError):
        MultiViewGenerator(view_pipeline=[], keys=('nope',))(dict(d))


def test_seeded_transform_is_reproducible_and_rng_argument():
    d = scene(50)
    a = RandomJitter(seed=3)(dict(d))['coord']
    b = RandomJitter(seed=3)(dict(d))['coord']
    np.testing.assert_array_equal(a, b)
    c = RandomJitter()(dict(d), rng=np.random.default_rng(3))['coord']
    np.testing.assert_array_equal(a, c)
    torch.testing.assert_close(torch.from_numpy(a), torch.from_numpy(c))
