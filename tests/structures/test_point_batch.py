"""PointBatch: collate, offsets, voxelization and splitting."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from geo3d.structures.point_batch import PointBatch, batch_to_offset, offset_to_batch


def _sample(n: int, seed: int, name: str, c: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    return {
        'coord': rng.uniform(0, 1, size=(n, 3)).astype(np.float32),
        'feat': rng.normal(size=(n, c)).astype(np.float32),
        'grid_coord': rng.integers(0, 10, size=(n, 3)),
        'segment': rng.integers(-1, 5, size=n),
        'name': name,
    }


def test_offset_batch_roundtrip():
    offset = torch.tensor([3, 3, 7])
    batch = offset_to_batch(offset)
    assert batch.tolist() == [0, 0, 0, 2, 2, 2, 2]
    assert batch_to_offset(batch, 3).tolist() == [3, 3, 7]
    assert batch_to_offset(torch.tensor([0, 1, 1])).tolist() == [1, 3]


def test_collate_offsets_extras_meta():
    s = [_sample(5, 0, 'a'), _sample(3, 1, 'b'), _sample(4, 2, 'c')]
    s[0]['grid_size'] = 0.02
    pb = PointBatch.collate(s)
    assert pb.offset.tolist() == [5, 8, 12]
    assert pb.batch_size == 3 and pb.num_points == 12
    assert pb.batch.tolist() == [0] * 5 + [1] * 3 + [2] * 4
    assert pb.coord.dtype == torch.float32 and pb.feat.shape == (12, 4)
    assert pb.grid_coord.dtype == torch.int64
    assert pb.grid_size == 0.02
    np.testing.assert_array_equal(pb['segment'].numpy(),
                                  np.concatenate([x['segment'] for x in s]))
    assert [m['name'] for m in pb.meta] == ['a', 'b', 'c']
    assert 'segment' in pb and 'origin_offset' not in pb


def test_collate_feat_keys_concatenates_channels():
    s = [{'coord': np.zeros((2, 3), np.float32), 'color': np.ones((2, 3), np.uint8),
          'normal': np.full((2, 3), 0.5, np.float32)}]
    pb = PointBatch.collate(s, feat_keys=('color', 'normal'))
    assert pb.feat.tolist() == [[1, 1, 1, 0.5, 0.5, 0.5]] * 2
    with pytest.raises(KeyError):
        PointBatch.collate(s)


def test_collate_inverse_shift_and_origin_offset():
    s0 = {'coord': torch.zeros(2, 3), 'feat': torch.zeros(2, 1),
          'inverse': torch.tensor([0, 1, 1, 0, 1]), 'origin_segment': torch.arange(5)}
    s1 = {'coord': torch.zeros(3, 3), 'feat': torch.zeros(3, 1),
          'inverse': torch.tensor([2, 0, 1]), 'origin_segment': torch.arange(3) + 10}
    pb = PointBatch.collate([s0, s1])
    assert pb['inverse'].tolist() == [0, 1, 1, 0, 1, 4, 2, 3]
    assert pb['origin_offset'].tolist() == [5, 8]
    assert pb['origin_segment'].tolist() == [0, 1, 2, 3, 4, 10, 11, 12]
    # every original point maps to a row of its own sample
    row_batch = pb.batch[pb['inverse']]
    origin_batch = offset_to_batch(pb['origin_offset'])
    assert torch.equal(row_batch, origin_batch)


def test_collate_errors():
    with pytest.raises(ValueError):
        PointBatch.collate([])
    bad = _sample(4, 0, 'a')
    bad['segment'] = bad['segment'][:3]
    with pytest.raises(ValueError, match='segment'):
        PointBatch.collate([bad])
    a, b = _sample(3, 0, 'a'), _sample(3, 1, 'b')
    del b['grid_coord']
    with pytest.raises(ValueError, match='grid_coord'):
        PointBatch.collate([a, b])
    a, b = _sample(3, 0, 'a'), _sample(3, 1, 'b')
    del b['segment']
    with pytest.raises(ValueError, match='segment'):
        PointBatch.collate([a, b])


def test_constructor_validation():
    with pytest.raises(ValueError):
        PointBatch(coord=torch.zeros(4, 2), feat=torch.zeros(4, 1), offset=torch.tensor([4]))
    with pytest.raises(ValueError):
        PointBatch(coord=torch.zeros(4, 3), feat=torch.zeros(3, 1), offset=torch.tensor([4]))
    with pytest.raises(ValueError):
        PointBatch(coord=torch.zeros(4, 3), feat=torch.zeros(4, 1), offset=torch.tensor([3]))
    with pytest.raises(ValueError):
        PointBatch(coord=torch.zeros(4, 3), feat=torch.zeros(4, 1), offset=torch.tensor([4]),
                   grid_coord=torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError):
        PointBatch(coord=torch.zeros(4, 3), feat=torch.zeros(4, 1),
                   offset=torch.zeros(0, dtype=torch.long))


def test_split_roundtrip():
    s = [_sample(5, 0, 'a'), _sample(3, 1, 'b')]
    pb = PointBatch.collate(s)
    parts = pb.split()
    assert len(parts) == 2
    for p, src in zip(parts, s):
        np.testing.assert_array_equal(p['coord'].numpy(), src['coord'])
        np.testing.assert_array_equal(p['feat'].numpy(), src['feat'])
        np.testing.assert_array_equal(p['grid_coord'].numpy(), src['grid_coord'])
        np.testing.assert_array_equal(p['segment'].numpy(), src['segment'])
    assert set(parts[0]) == {'coord', 'feat', 'grid_coord', 'segment'}


def test_to_device_keeps_everything():
    pb = PointBatch.collate([_sample(3, 0, 'a')])
    moved = pb.to('cpu')
    assert torch.equal(moved.coord, pb.coord) and torch.equal(moved['segment'], pb['segment'])
    assert moved.meta == pb.meta


def _slow_voxel_groups(pb: PointBatch, grid_size: float) -> dict:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (b, c) in enumerate(zip(pb.batch.tolist(), pb.coord.tolist())):
        groups[(b, *[int(np.floor(x / grid_size)) for x in c])].append(i)
    return groups


def _cloud_batch() -> PointBatch:
    rng = np.random.default_rng(4)
    samples = []
    for n, seed in ((60, 0), (40, 1)):
        cell = rng.integers(0, 4, size=(n, 3))
        coord = ((cell + rng.uniform(0.1, 0.9, size=(n, 3))) * 0.25).astype(np.float32)
        samples.append({'coord': coord, 'feat': rng.normal(size=(n, 2)).astype(np.float32),
                        'segment': rng.integers(0, 3, size=n),
                        'weight': rng.uniform(size=n).astype(np.float32), 'name': str(seed)})
    return PointBatch.collate(samples)


@pytest.mark.parametrize('mode', ['mean', 'first', 'random'])
def test_point_batch_grid_sample(mode):
    pb = _cloud_batch()
    out, res = pb.grid_sample(0.25, mode=mode, generator=torch.Generator().manual_seed(0))
    groups = _slow_voxel_groups(pb, 0.25)
    assert out.num_points == len(groups)
    assert out.grid_size == 0.25 and out.meta == pb.meta
    # per-sample voxel counts
    per_sample = [sum(1 for k in groups if k[0] == b) for b in range(2)]
    assert out.offset.tolist() == np.cumsum(per_sample).tolist()
    inv = out['inverse']
    assert inv.shape == (pb.num_points,)
    # inverse maps each input row to the voxel containing it, in its own sample
    assert torch.equal(out.batch[inv], pb.batch)
    assert torch.equal(torch.floor(pb.coord / 0.25).long() - _sample_min(pb, 0.25),
                       out.grid_coord[inv])
    for v in range(out.num_points):
        members = torch.nonzero(inv == v).squeeze(1)
        if mode == 'mean':
            torch.testing.assert_close(out.coord[v], pb.coord[members].mean(0))
            torch.testing.assert_close(out.feat[v], pb.feat[members].mean(0))
            torch.testing.assert_close(out['weight'][v], pb['weight'][members].mean())
            assert int(out['segment'][v]) == int(pb['segment'][members[0]])
        else:
            chosen = int(res.index[v])
            assert chosen in members.tolist()
            if mode == 'first':
                assert chosen == int(members[0])
            torch.testing.assert_close(out.coord[v], pb.coord[chosen])
            assert int(out['segment'][v]) == int(pb['segment'][chosen])
    # the voxelized batch knows the original points' layout
    assert out['origin_offset'].tolist() == pb.offset.tolist()


def _sample_min(pb: PointBatch, grid_size: float) -> torch.Tensor:
    g = torch.floor(pb.coord / grid_size).long()
    mins = torch.stack([g[pb.batch == b].min(0).values for b in range(pb.batch_size)])
    return mins[pb.batch]


def test_grid_sample_twice_composes_inverse_to_original_points():
    pb = _cloud_batch()
    pb = PointBatch(coord=pb.coord, feat=pb.feat, offset=pb.offset,
                    extras={**pb.extras, 'origin_segment': pb['segment'].clone()}, meta=pb.meta)
    pb.extras['inverse'] = torch.arange(pb.num_points)
    pb.extras['origin_offset'] = pb.offset.clone()
    fine, _ = pb.grid_sample(0.25, 'first')
    coarse, _ = fine.grid_sample(0.5, 'first')
    inv = coarse['inverse']
    assert inv.shape == (pb.num_points,)
    assert torch.equal(coarse['origin_segment'], pb['segment'])
    assert coarse['origin_offset'].tolist() == pb.offset.tolist()
    # the composed inverse is the voxel of every original point at the coarse level
    expected = torch.floor(pb.coord / 0.5).long() - _sample_min(pb, 0.5)
    assert torch.equal(coarse.grid_coord[inv], expected)


def test_pooling_map_needs_grid_coord():
    pb = _cloud_batch()
    with pytest.raises(ValueError):
        pb.pooling_map(2)
    out, _ = pb.grid_sample(0.25, 'first')
    pm = out.pooling_map(2)
    assert torch.equal(pm.coarse_batch[pm.inverse], out.batch)
    assert torch.equal(pm.coarse_coord[pm.inverse], torch.div(out.grid_coord, 2,
                                                              rounding_mode='floor'))
