"""Voxel-grid ops of geo3d.structures.grid against slow, obvious Python implementations."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from geo3d.structures import grid_sample, pooling_map, unique_voxels, voxel_keys

GRID = 0.1


# ----------------------------------------------------------------------------- slow references
def slow_groups(grid_coord: torch.Tensor, batch: torch.Tensor | None = None) -> dict:
    """{(b, gx, gy, gz): [point indices in input order]} by plain Python iteration."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, g in enumerate(grid_coord.tolist()):
        b = 0 if batch is None else int(batch[i])
        groups[(b, *g)].append(i)
    return dict(groups)


def slow_floor_grid(coord: torch.Tensor, batch: torch.Tensor, grid_size: float) -> list[tuple]:
    """floor(coord / grid_size) minus the per-sample minimum, with Python floats."""
    raw = [tuple(math.floor(c / grid_size) for c in p) for p in coord.tolist()]
    mins: dict[int, list[int]] = {}
    for b, g in zip(batch.tolist(), raw):
        m = mins.setdefault(b, list(g))
        for k in range(3):
            m[k] = min(m[k], g[k])
    return [tuple(g[k] - mins[b][k] for k in range(3)) for b, g in zip(batch.tolist(), raw)]


def random_points(n: int, seed: int, extent: int = 6, grid_size: float = GRID,
                  offset: float = -3.0) -> torch.Tensor:
    """(n, 3) points kept away from voxel boundaries so float rounding cannot flip a voxel."""
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, extent, size=(n, 3))
    frac = rng.uniform(0.1, 0.9, size=(n, 3))
    return torch.from_numpy(((cell + frac) * grid_size + offset * grid_size).astype(np.float32))


# ----------------------------------------------------------------------------- voxel_keys
def test_voxel_keys_equal_iff_same_voxel_and_sample():
    rng = np.random.default_rng(0)
    g = torch.from_numpy(rng.integers(-3, 3, size=(300, 3)))
    b = torch.from_numpy(rng.integers(0, 3, size=300))
    keys = voxel_keys(g, b).tolist()
    ident = [(int(bb), *gg) for bb, gg in zip(b.tolist(), g.tolist())]
    for i in range(0, 300, 7):
        for j in range(300):
            assert (keys[i] == keys[j]) == (ident[i] == ident[j])


def test_voxel_keys_separate_samples_and_negative_coords():
    g = torch.tensor([[-1, -2, -3], [-1, -2, -3], [5, 0, 0], [-1, -2, -3]])
    b = torch.tensor([0, 1, 0, 0])
    k = voxel_keys(g, b)
    assert k[0] == k[3] and k[0] != k[1] and k[0] != k[2]
    assert k.dtype == torch.int64
    # without batch, identical coordinates share a key
    k1 = voxel_keys(g)
    assert k1[0] == k1[1] == k1[3] != k1[2]


def test_voxel_keys_bad_input():
    with pytest.raises(ValueError):
        voxel_keys(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(TypeError):
        voxel_keys(torch.zeros(4, 3))
    assert voxel_keys(torch.zeros(0, 3, dtype=torch.long)).shape == (0,)


def test_voxel_keys_overflow_raises():
    g = torch.tensor([[0, 0, 0], [2 ** 21, 2 ** 21, 2 ** 21]])
    with pytest.raises(OverflowError):
        voxel_keys(g, torch.tensor([0, 3]))


# ----------------------------------------------------------------------------- unique_voxels
def test_unique_voxels_against_slow_grouping():
    rng = np.random.default_rng(1)
    g = torch.from_numpy(rng.integers(-2, 3, size=(200, 3)))
    b = torch.from_numpy(np.sort(rng.integers(0, 3, size=200)))
    first, inverse, counts = unique_voxels(g, b)
    groups = slow_groups(g, b)
    assert first.shape[0] == counts.shape[0] == len(groups)
    assert inverse.shape == (200,)
    assert int(counts.sum()) == 200
    for v in range(first.shape[0]):
        members = torch.nonzero(inverse == v).squeeze(1).tolist()
        key = (int(b[first[v]]), *g[first[v]].tolist())
        assert members == groups[key]                  # exactly the points of that voxel
        assert int(first[v]) == groups[key][0]          # first point in input order
        assert int(counts[v]) == len(groups[key])
    # voxels are ordered by sample: batch of the representatives is non-decreasing
    assert torch.all(torch.diff(b[first]) >= 0)


# ----------------------------------------------------------------------------- grid_sample
def _two_sample_cloud(seed: int = 2):
    c0 = random_points(150, seed, extent=4)
    c1 = random_points(100, seed + 1, extent=4, offset=7.0)
    coord = torch.cat([c0, c1])
    batch = torch.cat([torch.zeros(150, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    return coord, batch


@pytest.mark.parametrize('mode', ['mean', 'first', 'random'])
def test_grid_sample_grouping_and_min_shift(mode):
    coord, batch = _two_sample_cloud()
    res = grid_sample(coord, GRID, batch, mode=mode, generator=torch.Generator().manual_seed(0))
    slow_g = slow_floor_grid(coord, batch, GRID)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (bb, g) in enumerate(zip(batch.tolist(), slow_g)):
        groups[(bb, *g)].append(i)
    m = len(groups)
    assert res.grid_coord.shape == (m, 3) and res.batch.shape == (m,) and res.counts.shape == (m,)
    assert res.grid_coord.dtype == torch.int64
    # every sample's grid starts at 0 on each axis
    for s in (0, 1):
        assert res.grid_coord[res.batch == s].min(0).values.tolist() == [0, 0, 0]
    got = {(int(bb), *g): int(c) for bb, g, c in
           zip(res.batch.tolist(), res.grid_coord.tolist(), res.counts.tolist())}
    assert got == {k: len(v) for k, v in groups.items()}
    # inverse maps every point to its own voxel
    for i in range(coord.shape[0]):
        v = int(res.inverse[i])
        assert (int(res.batch[v]), *res.grid_coord[v].tolist()) == (int(batch[i]), *slow_g[i])
    if mode == 'mean':
        assert res.index is None
        mean = res.reduce(coord)
        for v in range(m):
            members = groups[(int(res.batch[v]), *res.grid_coord[v].tolist())]
            torch.testing.assert_close(mean[v], coord[members].mean(0))
        with pytest.raises(ValueError):
            res.select(coord)
    else:
        assert res.index.shape == (m,)
        for v in range(m):
            members = groups[(int(res.batch[v]), *res.grid_coord[v].tolist())]
            assert int(res.index[v]) in members
            if mode == 'first':
                assert int(res.index[v]) == members[0]
        torch.testing.assert_close(res.select(coord), coord[res.index])


def test_grid_sample_samples_sorted_and_separated():
    # identical coordinates in two samples must give two voxels
    coord = torch.tensor([[0.05, 0.05, 0.05]] * 4)
    batch = torch.tensor([0, 0, 1, 1])
    res = grid_sample(coord, GRID, batch, mode='first')
    assert res.batch.tolist() == [0, 1]
    assert res.counts.tolist() == [2, 2]
    assert res.inverse.tolist() == [0, 0, 1, 1]


def test_grid_sample_random_is_uniform_over_voxel_points():
    # one voxel of 4 points and one of 1 point
    coord = torch.tensor([[0.01, 0.01, 0.01], [0.02, 0.03, 0.04], [0.05, 0.05, 0.05],
                          [0.09, 0.01, 0.02], [0.51, 0.5, 0.5]])
    hits = defaultdict(int)
    trials = 2000
    gen = torch.Generator().manual_seed(123)
    for _ in range(trials):
        res = grid_sample(coord, GRID, mode='random', generator=gen)
        assert res.index.shape == (2,)
        assert int(res.index[1]) == 4
        hits[int(res.index[0])] += 1
    assert set(hits) == {0, 1, 2, 3}
    for k in range(4):
        # expected 500 each; 5 sigma of a binomial(2000, 1/4) is ~97
        assert abs(hits[k] - trials / 4) < 100, hits


def test_grid_sample_random_reproducible_with_generator():
    coord, batch = _two_sample_cloud(5)
    a = grid_sample(coord, GRID, batch, 'random', torch.Generator().manual_seed(7)).index
    b = grid_sample(coord, GRID, batch, 'random', torch.Generator().manual_seed(7)).index
    assert torch.equal(a, b)


def test_grid_sample_bad_input():
    coord = torch.rand(5, 3)
    with pytest.raises(ValueError):
        grid_sample(coord, 0.0)
    with pytest.raises(ValueError):
        grid_sample(torch.rand(5, 2), 0.1)
    with pytest.raises(ValueError):
        grid_sample(coord, 0.1, mode='median')


def test_grid_sample_empty():
    res = grid_sample(torch.zeros(0, 3), 0.1, mode='random')
    assert res.grid_coord.shape == (0, 3) and res.inverse.shape == (0,) and res.index.shape == (0,)


def test_grid_sample_reduce_multichannel_and_1d():
    coord = torch.tensor([[0.01, 0.0, 0.0], [0.02, 0.0, 0.0], [0.5, 0.0, 0.0]])
    res = grid_sample(coord, GRID, mode='mean')
    feat = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 5.0]])
    torch.testing.assert_close(res.reduce(feat), torch.tensor([[2.0, 4.0], [5.0, 5.0]]))
    torch.testing.assert_close(res.reduce(feat[:, 0]), torch.tensor([2.0, 5.0]))


# ----------------------------------------------------------------------------- pooling maps
@pytest.mark.parametrize('stride', [2, 4, 8])
def test_pooling_map_against_slow_grouping(stride):
    rng = np.random.default_rng(stride)
    g = torch.from_numpy(rng.integers(0, 20, size=(300, 3)))
    b = torch.from_numpy(np.sort(rng.integers(0, 2, size=300)))
    # make fine voxels unique, as they are after grid sampling
    first, _, _ = unique_voxels(g, b)
    g, b = g[first], b[first]
    pm = pooling_map(g, b, stride)
    slow: dict[tuple, list[int]] = defaultdict(list)
    for i, (bb, gg) in enumerate(zip(b.tolist(), g.tolist())):
        slow[(bb, *[x // stride for x in gg])].append(i)
    assert pm.coarse_coord.shape == (len(slow), 3)
    assert pm.coarse_batch.shape == pm.counts.shape == (len(slow),)
    for v in range(len(slow)):
        key = (int(pm.coarse_batch[v]), *pm.coarse_coord[v].tolist())
        members = torch.nonzero(pm.inverse == v).squeeze(1).tolist()
        assert members == slow[key]
        assert int(pm.counts[v]) == len(members)

    feat = torch.from_numpy(rng.normal(size=(g.shape[0], 5)).astype(np.float32))
    pooled = {r: pm.pool(feat, r) for r in ('mean', 'max', 'sum')}
    for v in range(len(slow)):
        members = slow[(int(pm.coarse_batch[v]), *pm.coarse_coord[v].tolist())]
        torch.testing.assert_close(pooled['mean'][v], feat[members].mean(0))
        torch.testing.assert_close(pooled['max'][v], feat[members].max(0).values)
        torch.testing.assert_close(pooled['sum'][v], feat[members].sum(0))
    coarse = torch.from_numpy(rng.normal(size=(len(slow), 4)).astype(np.float32))
    up = pm.unpool(coarse)
    assert up.shape == (g.shape[0], 4)
    for i in range(g.shape[0]):
        torch.testing.assert_close(up[i], coarse[pm.inverse[i]])


def test_pooling_map_negative_coords_floor():
    g = torch.tensor([[-1, 0, 0], [-2, 0, 0], [0, 0, 0], [1, 1, 1], [-3, 0, 0]])
    pm = pooling_map(g, None, 2)
    parents = pm.coarse_coord[pm.inverse].tolist()
    assert parents == [[-1, 0, 0], [-1, 0, 0], [0, 0, 0], [0, 0, 0], [-2, 0, 0]]


def test_pooling_map_composes_across_levels():
    rng = np.random.default_rng(3)
    g = torch.from_numpy(rng.integers(0, 32, size=(400, 3)))
    first, _, _ = unique_voxels(g)
    g = g[first]
    p2 = pooling_map(g, None, 2)
    p4 = pooling_map(p2.coarse_coord, p2.coarse_batch, 2)
    direct = pooling_map(g, None, 4)
    # two stride-2 levels group fine voxels exactly like one stride-4 level
    torch.testing.assert_close(p4.coarse_coord[p4.inverse[p2.inverse]],
                               direct.coarse_coord[direct.inverse])


def test_pooling_map_bad_input():
    g = torch.zeros(3, 3, dtype=torch.long)
    with pytest.raises(ValueError):
        pooling_map(g, None, 0)
    pm = pooling_map(g, None, 2)
    with pytest.raises(ValueError):
        pm.pool(torch.ones(3, 2), 'median')
