"""MultiResolutionSampler against dense grid_sample (MSM's implementation) and a dict lookup."""
import pytest
import torch
import torch.nn.functional as F

from geo3d.models.probes import MultiResolutionSampler
from geo3d.ops.sparse import SparseLevel


def make_scene_levels(gen, strides=(1, 2, 4), channels=(3, 4, 5), dtype=torch.float32):
    """Two scenes of different extents, random sparse stride-1 voxels; every level holds the
    parents of the stride-1 voxels plus random extra voxels (as a U-Net level may)."""
    extents = [(9, 7, 5), (5, 11, 6)]
    g, b = [], []
    for i, ext in enumerate(extents):
        full = torch.stack(torch.meshgrid(*[torch.arange(e) for e in ext], indexing='ij'), -1)
        full = full.reshape(-1, 3)
        keep = torch.rand(full.shape[0], generator=gen) < 0.3
        g.append(full[keep])
        b.append(torch.full((int(keep.sum()),), i))
    g, b = torch.cat(g), torch.cat(b)
    levels = []
    for s, c in zip(strides, channels):
        parents = torch.unique(torch.cat([b[:, None], torch.div(g, s, rounding_mode='floor')], 1),
                               dim=0)
        if s > 1:   # a few extra occupied voxels inside the scene's box
            extra = torch.cat([torch.randint(0, 2, (4, 1), generator=gen),
                               torch.randint(0, 3, (4, 3), generator=gen)], 1)
            parents = torch.unique(torch.cat([parents, extra]), dim=0)
        parents = parents[torch.randperm(parents.shape[0], generator=gen)]   # unsorted rows
        feat = torch.randn(parents.shape[0], c, generator=gen, dtype=dtype)
        levels.append(SparseLevel(feat=feat, indices=parents.int(), stride=s))
    return levels[::-1], g, b            # backbone order: coarsest first


def dense_reference(level, g, b):
    """MSM: densify each scene, grid_sample(bilinear, align_corners=True) at (c+0.5)/s."""
    c = level.feat.shape[1]
    out = torch.zeros(g.shape[0], c, dtype=level.feat.dtype)
    for scene in b.unique():
        lv = level.batch == scene
        coords = level.grid_coord[lv]
        size = (coords.max(0).values + 3).tolist()          # any size >= max + 1 works
        dense = torch.zeros(c, *size, dtype=level.feat.dtype)
        dense[:, coords[:, 0], coords[:, 1], coords[:, 2]] = level.feat[lv].T
        dense = dense.permute(0, 3, 2, 1)[None]              # (1, C, Z, Y, X): x is the last dim
        q = b == scene
        p = (g[q].to(level.feat.dtype) + 0.5) / level.stride  # (n, 3) xyz in level voxels
        dims = torch.tensor(size, dtype=level.feat.dtype)
        norm = p / (dims - 1) * 2 - 1
        res = F.grid_sample(dense, norm[None, :, None, None, :], mode='bilinear',
                            align_corners=True, padding_mode='zeros')
        out[q] = res[0, :, :, 0, 0].T
    return out


def test_trilinear_matches_dense_grid_sample():
    gen = torch.Generator().manual_seed(0)
    levels, g, b = make_scene_levels(gen)
    sampler = MultiResolutionSampler(in_channels=[5, 4, 3], in_strides=[4, 2, 1],
                                     chunk_size=37)
    assert sampler.out_channels == 12
    out = sampler(levels, g, b)
    ref = torch.cat([dense_reference(lv, g, b) for lv in levels[::-1]], 1)
    assert out.shape == (g.shape[0], 12)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # level selection: finest-first indices
    sub = MultiResolutionSampler(in_channels=[5, 4, 3], levels=[2, 0])
    assert sub.out_channels == 8
    torch.testing.assert_close(sub(levels, g, b), torch.cat([ref[:, 7:], ref[:, :3]], 1))


def test_nearest_matches_dict_lookup():
    gen = torch.Generator().manual_seed(1)
    levels, g, b = make_scene_levels(gen)
    out = MultiResolutionSampler(mode='nearest', chunk_size=50)(levels, g, b)
    cols = []
    for lv in sorted(levels, key=lambda x: x.stride):
        table = {tuple(k): i for i, k in enumerate(lv.indices.tolist())}
        rows = [table[(int(bb), *(int(x) // lv.stride for x in gg))] for gg, bb in zip(g, b)]
        cols.append(lv.feat[torch.tensor(rows)])
    torch.testing.assert_close(out, torch.cat(cols, 1))


def test_gradcheck_level_features():
    gen = torch.Generator().manual_seed(2)
    levels, g, b = make_scene_levels(gen, strides=(1, 2), channels=(2, 3), dtype=torch.float64)
    g, b = g[:20], b[:20]
    feats = [lv.feat.clone().requires_grad_(True) for lv in levels]
    sampler = MultiResolutionSampler(chunk_size=7)

    def fn(*fs):
        lvs = [SparseLevel(feat=f, indices=lv.indices, stride=lv.stride)
               for f, lv in zip(fs, levels)]
        return sampler(lvs, g, b)

    assert torch.autograd.gradcheck(fn, feats, fast_mode=True)


def test_bad_inputs():
    with pytest.raises(ValueError):
        MultiResolutionSampler(mode='cubic')
    with pytest.raises(ValueError):
        MultiResolutionSampler(levels=[])
    with pytest.raises(IndexError):
        MultiResolutionSampler(in_channels=[4, 4], levels=[3])
