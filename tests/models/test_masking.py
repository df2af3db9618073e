"""Patch masking (MSM): per-sample ratio, propagation to finer levels, losses."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.pretrain3d import (feature_loss, match_voxels, normalize_target,
                                     random_patch_mask)
from geo3d.structures import pooling_map, voxel_keys


def random_voxels(n: int = 3000, samples: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, 40, (n, 3), generator=gen)
    b = torch.randint(0, samples, (n,), generator=gen)
    keys = voxel_keys(g, b)
    _, first = torch.unique(keys, return_inverse=True)
    keep = torch.zeros(int(first.max()) + 1, dtype=torch.long).scatter_(
        0, first, torch.arange(n))
    return g[keep], b[keep]


def test_ratio_per_sample_and_propagation() -> None:
    g, b = random_voxels()
    pm = random_patch_mask(g, b, patch_stride=8, ratio=0.4,
                           generator=torch.Generator().manual_seed(1))
    for s in range(3):
        sel = pm.patch_batch == s
        n = int(sel.sum())
        assert int(pm.patch_masked[sel].sum()) == math.floor(0.4 * n + 0.5)
    for level in range(4):  # strides 1, 2, 4, 8
        stride = 2 ** level
        lvl = pooling_map(g, b, stride)
        masked = pm.level_mask(lvl.coarse_coord, lvl.coarse_batch, stride)
        parent = torch.div(lvl.coarse_coord, 8 // stride, rounding_mode='floor')
        row = match_voxels(parent, lvl.coarse_batch, pm.patch_coord, pm.patch_batch)
        assert bool((row >= 0).all())
        assert torch.equal(masked, pm.patch_masked[row])
        # level l masked iff it has no visible level-0 child
        vis0 = ~pm.level_mask(g, b, 1)
        vis_l = pooling_map(g[vis0], b[vis0], stride)
        hit = match_voxels(lvl.coarse_coord, lvl.coarse_batch, vis_l.coarse_coord,
                           vis_l.coarse_batch)
        assert torch.equal(masked, hit < 0)


def test_ratio_zero_and_one_patch_stays_visible() -> None:
    g, b = random_voxels(200, 2)
    assert not bool(random_patch_mask(g, b, 8, 0.0).patch_masked.any())
    one = torch.tensor([[0, 0, 0], [1, 1, 1]])
    pm = random_patch_mask(one, torch.tensor([0, 1]), 8, 0.99)
    assert not bool(pm.patch_masked.any())
    with pytest.raises(ValueError):
        random_patch_mask(g, b, 8, 1.0)


def test_match_voxels() -> None:
    ref = torch.tensor([[0, 0, 0], [1, 2, 3], [1, 2, 3]])
    rb = torch.tensor([0, 0, 1])
    q = torch.tensor([[1, 2, 3], [1, 2, 3], [5, 5, 5]])
    qb = torch.tensor([1, 0, 0])
    assert match_voxels(q, qb, ref, rb).tolist() == [2, 1, -1]


def test_losses_hand_values_and_grad() -> None:
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0], [0.0, -3.0]])
    # cosines: 1/sqrt(2) and -1 -> mean(1 - cos)
    want = ((1 - 1 / math.sqrt(2)) + 2.0) / 2
    got = feature_loss(pred, target, 'cosine', target_norm='none')
    assert got.item() == pytest.approx(want, abs=1e-6)
    got.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    # layer-normalised targets: rows [1, 1] -> [0, 0]; [0, -3] -> [1, -1] (approx, eps)
    tn = normalize_target(target, 'layer')
    assert torch.allclose(tn, torch.tensor([[0.0, 0.0], [1.0, -1.0]]), atol=1e-3)
    pred2 = torch.tensor([[0.5, -2.0], [1.0, 0.0]], requires_grad=True)
    # smooth L1 (beta 1) vs LN targets: |d| = .5, 2, 0, 1 -> .125, 1.5, 0, .5
    loss = feature_loss(pred2, target, 'smooth_l1', target_norm='layer')
    assert loss.item() == pytest.approx((0.125 + 1.5 + 0.0 + 0.5) / 4, abs=1e-3)
    loss.backward()
    assert pred2.grad is not None and pred2.grad.abs().sum() > 0
    st = normalize_target(torch.tensor([[1.0, 0.0], [3.0, 4.0]]), 'standardize')
    assert torch.allclose(st, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4)
    empty = torch.zeros(0, 2, requires_grad=True)
    assert feature_loss(empty, torch.zeros(0, 2)).item() == 0.0
