"""ProDepth's PCVM: distributions, fusion, mapping back to a cost, static probability."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geo3d.models.depth.pcvm import (ProbabilisticCostVolumeModulation, distribution_to_cost,
                                     fuse_distributions, multi_frame_distribution,
                                     single_frame_distribution, static_probability)
from geo3d.registry import MODELS

F64 = torch.float64


def rand(*shape: int, seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=F64)


def sums_to_one(p: torch.Tensor) -> None:
    assert bool((p >= 0).all())
    torch.testing.assert_close(p.sum(1), torch.ones_like(p.sum(1)))


# --------------------------------------------------------------------------- closed forms


def test_static_probability_closed_form_and_grad() -> None:
    da, db = torch.tensor([[[[2.0, 1.0]]]], dtype=F64), torch.tensor([[[[3.5, 1.0]]]], dtype=F64)
    sa, sb = torch.tensor([[[[0.5, 0.25]]]], dtype=F64), torch.tensor([[[[0.2, 0.25]]]], dtype=F64)
    w = static_probability(da, db, sa, sb)
    assert w.shape == (1, 1, 1, 2)
    assert float(w[0, 0, 0, 0]) == pytest.approx(math.exp(-2 / 3 * 1.5) * math.exp(-2 / 3 * 0.3))
    assert float(w[0, 0, 0, 1]) == 1.0  # agreement -> static
    assert float(static_probability(da, db, sa, sb, alpha=1.0)[0, 0, 0, 0]) == pytest.approx(
        math.exp(-1.8))
    big = static_probability(da * 0, da * 0 + 1e3, sa, sb)
    assert bool(((big >= 0) & (big <= 1)).all())
    args = tuple(rand(1, 1, 2, 3, seed=i, lo=0.1, hi=5.0).requires_grad_() for i in range(4))
    assert torch.autograd.gradcheck(static_probability, args)


def test_multi_frame_distribution_closed_form() -> None:
    cost = rand(2, 5, 3, 4, seed=1)
    p = multi_frame_distribution(cost, temperature=0.5)
    assert p.shape == cost.shape
    sums_to_one(p)
    c = cost.numpy()
    n = (c - c.min(1, keepdims=True)) / (c.max(1, keepdims=True) - c.min(1, keepdims=True))
    e = np.exp(-n / 0.5)
    np.testing.assert_allclose(p.numpy(), e / e.sum(1, keepdims=True), rtol=1e-12)
    # lowest cost = most likely bin; a constant cost gives the uniform distribution
    assert torch.equal(p.argmax(1), cost.argmin(1))
    flat = multi_frame_distribution(torch.full((1, 4, 2, 2), 0.7, dtype=F64))
    torch.testing.assert_close(flat, torch.full_like(flat, 0.25))
    assert torch.autograd.gradcheck(multi_frame_distribution,
                                    (rand(1, 4, 2, 2, seed=2).requires_grad_(),))


def test_single_frame_distribution_closed_form() -> None:
    bins = torch.linspace(1.0, 8.0, 8, dtype=F64)
    depth, sigma = rand(2, 1, 3, 2, seed=3, lo=1, hi=8), rand(2, 1, 3, 2, seed=4, lo=0.5, hi=3)
    p = single_frame_distribution(depth, sigma, bins)
    assert p.shape == (2, 8, 3, 2)
    sums_to_one(p)
    g = np.exp(-(bins.numpy().reshape(1, -1, 1, 1) - depth.numpy()) ** 2
               / (2 * sigma.numpy() ** 2))
    np.testing.assert_allclose(p.numpy(), g / g.sum(1, keepdims=True), rtol=1e-10)
    # per-sample bins
    per = torch.stack([bins, bins * 2])
    p2 = single_frame_distribution(depth, sigma, per)
    torch.testing.assert_close(p2[0], p[0])
    torch.testing.assert_close(p2[1:], single_frame_distribution(depth[1:], sigma[1:], bins * 2))
    # every bin many sigmas away: one-hot at the nearest bin (no 0/0)
    far = single_frame_distribution(torch.tensor([[[[1e4]], [[-5.0]]]], dtype=F64).reshape(
        2, 1, 1, 1), torch.full((2, 1, 1, 1), 1e-3, dtype=F64), bins)
    assert far[0, :, 0, 0].tolist() == [0.0] * 7 + [1.0]
    assert far[1, :, 0, 0].tolist() == [1.0] + [0.0] * 7
    far32 = single_frame_distribution(torch.full((1, 1, 1, 1), 1e7), torch.zeros(1, 1, 1, 1),
                                      bins.float())
    assert far32[0, :, 0, 0].tolist() == [0.0] * 7 + [1.0]
    # huge sigma: uniform
    wide = single_frame_distribution(depth, sigma * 1e6, bins)
    torch.testing.assert_close(wide, torch.full_like(wide, 1 / 8))
    d, s = depth[:1, :, :2].clone().requires_grad_(), sigma[:1, :, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: single_frame_distribution(a, b, bins), (d, s))


# --------------------------------------------------------------------------- fusion


def test_fusion_sums_to_one_and_gate() -> None:
    p_mf = multi_frame_distribution(rand(1, 6, 1, 2, seed=5))
    p_sf = single_frame_distribution(torch.full((1, 1, 1, 2), 3.0, dtype=F64),
                                     torch.ones(1, 1, 1, 2, dtype=F64),
                                     torch.linspace(1, 6, 6, dtype=F64))
    W = torch.tensor([0.3, 0.5], dtype=F64).reshape(1, 1, 1, 2)
    geo = (p_mf ** W) * (p_sf ** (1 - W))
    geo = geo / geo.sum(1, keepdim=True)
    free = fuse_distributions(p_mf, p_sf, W, gate=None)
    sums_to_one(free)
    torch.testing.assert_close(free, geo)
    gated = fuse_distributions(p_mf, p_sf, W, gate=0.4)
    sums_to_one(gated)
    torch.testing.assert_close(gated[..., 0], geo[..., 0])  # W = 0.3 <= gate: fused
    assert torch.equal(gated[..., 1], p_mf[..., 1])  # W = 0.5 > gate: multi-frame kept
    # the extremes
    torch.testing.assert_close(fuse_distributions(p_mf, p_sf, W * 0, gate=None), p_sf)
    torch.testing.assert_close(fuse_distributions(p_mf, p_sf, W * 0 + 1, gate=None), p_mf)
    # zeros in a distribution do not give NaN (0 ** 0 = 1 is the limit taken)
    onehot = torch.zeros_like(p_sf)
    onehot[:, 2] = 1
    out = fuse_distributions(p_mf, onehot, W * 0, gate=None)
    torch.testing.assert_close(out, onehot)
    assert bool(torch.isfinite(fuse_distributions(onehot, p_sf, W, gate=None)).all())
    args = (p_mf.clone().requires_grad_(), p_sf.clone().requires_grad_(),
            W.clone().requires_grad_())
    assert torch.autograd.gradcheck(lambda a, b, w: fuse_distributions(a, b, w, None), args)


def test_peak_moves_monotonically_from_mf_to_sf() -> None:
    bins = torch.linspace(1.0, 20.0, 40, dtype=F64)
    k = torch.arange(40, dtype=F64).reshape(1, 40, 1, 1)
    cost = ((k - 8) / 40) ** 2  # matching optimum at bin 8
    p_mf = multi_frame_distribution(cost, temperature=0.02)
    mono = bins[30].reshape(1, 1, 1, 1)
    p_sf = single_frame_distribution(mono, torch.full_like(mono, 2.0), bins)
    peaks = [int(fuse_distributions(p_mf, p_sf, torch.full_like(mono, w), gate=None).argmax())
             for w in np.linspace(1.0, 0.0, 21)]
    assert peaks[0] == 8 and peaks[-1] == 30
    assert all(b >= a for a, b in zip(peaks, peaks[1:]))
    assert len(set(peaks)) > 5  # it travels, it does not jump


# --------------------------------------------------------------------------- back to a cost


def test_distribution_to_cost_inverts_multi_frame() -> None:
    cost = rand(2, 7, 3, 3, seed=6, lo=0.2, hi=1.5)
    lo, hi = cost.amin(1, keepdim=True), cost.amax(1, keepdim=True)
    for temperature in (1.0, 0.3):
        p = multi_frame_distribution(cost, temperature)
        torch.testing.assert_close(distribution_to_cost(p, lo, hi), cost)
    # linear: ProDepth's formula
    p = multi_frame_distribution(cost)
    pn = p.numpy()
    want = ((pn.max(1, keepdims=True) - pn) / (pn.max(1, keepdims=True) - pn.min(1, keepdims=True))
            * (hi - lo).numpy() + lo.numpy())
    np.testing.assert_allclose(distribution_to_cost(p, lo, hi, 'linear').numpy(), want,
                               rtol=1e-12)
    # a flat distribution maps to cost_min
    flat = torch.full((1, 4, 1, 1), 0.25, dtype=F64)
    one = torch.ones(1, 1, 1, 1, dtype=F64)
    assert distribution_to_cost(flat, one, one * 3).flatten().tolist() == [1.0] * 4
    assert torch.autograd.gradcheck(lambda q: distribution_to_cost(q, lo[:1], hi[:1]),
                                    (p[:1].clone().requires_grad_(),))


# --------------------------------------------------------------------------- the module


def module_inputs(seed: int = 7):
    bins = torch.linspace(0.5, 10.0, 16, dtype=F64)
    cost = rand(2, 16, 4, 5, seed=seed, lo=0.1, hi=2.0)
    mono = rand(2, 1, 4, 5, seed=seed + 1, lo=0.6, hi=9.5)
    sigma = rand(2, 1, 4, 5, seed=seed + 2, lo=0.001, hi=0.02)  # std 0.02..0.4 with scale 20
    return cost, mono, sigma, bins


@pytest.mark.parametrize('gate', [0.4, None])
def test_static_pixels_keep_their_cost(gate: float | None) -> None:
    cost, mono, sigma, bins = module_inputs()
    pcvm = ProbabilisticCostVolumeModulation(gate=gate)
    out = pcvm(cost, mono, sigma, torch.ones_like(mono), bins)
    torch.testing.assert_close(out, cost)
    out = ProbabilisticCostVolumeModulation(gate=gate, temperature=0.25)(
        cost, mono, sigma, torch.ones_like(mono), bins)
    torch.testing.assert_close(out, cost)


@pytest.mark.parametrize('mapping', ['log', 'linear'])
def test_dynamic_pixels_follow_the_teacher(mapping: str) -> None:
    cost, mono, sigma, bins = module_inputs()
    pcvm = ProbabilisticCostVolumeModulation(mapping=mapping)
    W = torch.zeros_like(mono)
    p_mf, p_sf, fused = pcvm.distributions(cost, mono, sigma, W, bins)
    for p in (p_mf, p_sf, fused):
        sums_to_one(p)
    torch.testing.assert_close(fused, p_sf)
    out = pcvm(cost, mono, sigma, W, bins)
    nearest = (bins.reshape(1, -1, 1, 1) - mono).abs().argmin(1)
    assert torch.equal(out.argmin(1), nearest)
    # the result stays within each pixel's original cost range
    assert bool((out >= cost.amin(1, keepdim=True) - 1e-12).all())
    assert bool((out <= cost.amax(1, keepdim=True) + 1e-12).all())
    # mixed: gated pixels unchanged, the others moved
    W = torch.zeros_like(mono)
    W[:, :, :2] = 0.9
    out = ProbabilisticCostVolumeModulation(mapping='log')(cost, mono, sigma, W, bins)
    torch.testing.assert_close(out[:, :, :2], cost[:, :, :2])
    assert not torch.allclose(out[:, :, 2:], cost[:, :, 2:])


def test_inputs_are_detached_and_registry() -> None:
    cost, mono, sigma, bins = module_inputs()
    ins = [t.clone().requires_grad_() for t in (cost, mono, sigma, torch.full_like(mono, 0.2))]
    out = ProbabilisticCostVolumeModulation()(*ins, bins)
    assert not out.requires_grad
    pcvm = MODELS.build(dict(type='ProbabilisticCostVolumeModulation', var_scale=10.0,
                             gate=None, mapping='linear'))
    assert isinstance(pcvm, ProbabilisticCostVolumeModulation) and pcvm.gate is None
    assert list(pcvm.parameters()) == [] and pcvm.state_dict() == {}


def test_bad_input() -> None:
    cost, mono, sigma, bins = module_inputs()
    pcvm = ProbabilisticCostVolumeModulation()
    with pytest.raises(ValueError, match='cost must be'):
        pcvm(cost[0], mono, sigma, mono, bins)
    with pytest.raises(ValueError, match='mono_depth must be'):
        pcvm(cost, mono[:, :, :2], sigma, mono, bins)
    with pytest.raises(ValueError, match='W must be'):
        pcvm(cost, mono, sigma, mono[:1], bins)
    with pytest.raises(ValueError, match='bins must be'):
        pcvm(cost, mono, sigma, mono, bins[:5])
    with pytest.raises(ValueError, match='depth_b must be'):
        static_probability(mono, mono[:1], mono, mono)
    with pytest.raises(ValueError, match='alpha'):
        static_probability(mono, mono, mono, mono, alpha=0.0)
    with pytest.raises(ValueError, match='temperature'):
        multi_frame_distribution(cost, temperature=0.0)
    with pytest.raises(ValueError, match='sigma must be'):
        single_frame_distribution(mono, sigma[:, :, :1], bins)
    with pytest.raises(ValueError, match='bins must be'):
        single_frame_distribution(mono, sigma, bins.reshape(4, 4))
    with pytest.raises(ValueError, match='p_sf must have'):
        fuse_distributions(cost, cost[:, :3], mono)
    with pytest.raises(ValueError, match='gate'):
        fuse_distributions(cost, cost, mono, gate=1.5)
    with pytest.raises(ValueError, match='mapping'):
        distribution_to_cost(cost, mono, mono, mapping='exp')
    with pytest.raises(ValueError, match='cost_max must be'):
        distribution_to_cost(cost, mono, mono[:, :, 1:])
    with pytest.raises(ValueError, match='var_scale'):
        ProbabilisticCostVolumeModulation(var_scale=0.0)
    with pytest.raises(ValueError, match='mapping'):
        ProbabilisticCostVolumeModulation(mapping='sid')
