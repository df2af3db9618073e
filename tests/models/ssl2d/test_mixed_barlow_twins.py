"""MixedBarlowTwinsLoss against the paper's formula with separate matrices, reductions, errors."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.ssl2d.losses.barlow_twins import BarlowTwinsLoss
from geo3d.models.ssl2d.losses.mixed_barlow_twins import MixedBarlowTwinsLoss, mix_views
from tests.models.ssl2d.helpers import assert_matches_reference


def std(z: torch.Tensor, eps: float) -> torch.Tensor:
    centered = z - z.sum(0) / z.shape[0]
    return centered / torch.sqrt((centered ** 2).sum(0) / z.shape[0] + eps)


def paper_formula(z_a, z_b, z_m, alpha: float, perm, lam: float, scale: float, eps: float):
    """README formulas of wgcban/mix-bt, matrix by matrix, scalar alpha."""
    n = z_a.shape[0]
    a, b, m = std(z_a, eps), std(z_b, eps), std(z_m, eps)
    c = a.T @ b / n
    off = c - torch.diag(torch.diag(c))
    bt = ((1 - torch.diag(c)) ** 2).sum() + lam * (off ** 2).sum()
    c_ma, c_mb = m.T @ a / n, m.T @ b / n
    c_ma_gt = alpha * (a.T @ a) / n + (1 - alpha) * (b[perm].T @ a) / n
    c_mb_gt = alpha * (a.T @ b) / n + (1 - alpha) * (b[perm].T @ b) / n
    reg = ((c_ma - c_ma_gt) ** 2).sum() + ((c_mb - c_mb_gt) ** 2).sum()
    return bt + scale * lam * reg


def make(seed: int = 0, n: int = 6, d: int = 4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g), torch.randn(n, d, generator=g),
            torch.randn(n, d, generator=g), torch.randperm(n, generator=g))


def test_matches_paper_formula_value_and_grads() -> None:
    z_a, z_b, z_m, perm = make()
    loss = MixedBarlowTwinsLoss(lambda_offdiag=0.2, mixup_loss_scale=3.0)
    assert_matches_reference(
        lambda a, b, m: loss(a, b, m, 0.3, perm),
        lambda a, b, m: paper_formula(a, b, m, 0.3, perm, 0.2, 3.0, 1e-5), [z_a, z_b, z_m])


def test_per_sample_alpha_and_reductions() -> None:
    z_a, z_b, z_m, perm = make(1)
    loss = MixedBarlowTwinsLoss()
    torch.testing.assert_close(loss(z_a, z_b, z_m, 0.7, perm),
                               loss(z_a, z_b, z_m, torch.full((6,), 0.7), perm))
    # per-sample alphas differ from any single alpha
    alphas = torch.linspace(0, 1, 6)
    assert not torch.allclose(loss(z_a, z_b, z_m, alphas, perm), loss(z_a, z_b, z_m, 0.5, perm))
    # scale 0 is plain Barlow Twins
    no_mix = MixedBarlowTwinsLoss(lambda_offdiag=0.0051, mixup_loss_scale=0.0)
    torch.testing.assert_close(no_mix(z_a, z_b, z_m, 0.4, perm), BarlowTwinsLoss()(z_a, z_b))
    # the regulariser is non-negative
    assert float(loss(z_a, z_b, z_m, 0.4, perm)) >= float(BarlowTwinsLoss(0.0078125)(z_a, z_b))


def test_gradcheck() -> None:
    z_a, z_b, z_m, perm = make(2, n=4, d=3)
    args = [t.double().requires_grad_(True) for t in (z_a, z_b, z_m)]
    loss = MixedBarlowTwinsLoss(lambda_offdiag=0.1)
    assert torch.autograd.gradcheck(lambda a, b, m: loss(a, b, m, 0.35, perm), args)


def test_mix_views() -> None:
    g = torch.Generator().manual_seed(3)
    x_a, x_b = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    perm = torch.tensor([2, 0, 1])
    out = mix_views(x_a, x_b, 0.25, perm)
    for i in range(3):
        torch.testing.assert_close(out[i], 0.25 * x_a[i] + 0.75 * x_b[perm[i]])
    per = mix_views(x_a, x_b, torch.tensor([0.0, 1.0, 0.5]), perm)
    torch.testing.assert_close(per[0], x_b[2])
    torch.testing.assert_close(per[1], x_a[1])


def test_errors_name_the_argument() -> None:
    z_a, z_b, z_m, perm = make()
    loss = MixedBarlowTwinsLoss()
    with pytest.raises(ValueError, match='z_m has shape'):
        loss(z_a, z_b, z_m[:5], 0.5, perm)
    with pytest.raises(ValueError, match='perm must be a permutation'):
        loss(z_a, z_b, z_m, 0.5, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match='alpha must lie in'):
        loss(z_a, z_b, z_m, 1.5, perm)
    with pytest.raises(ValueError, match='alpha must be a float or have shape'):
        loss(z_a, z_b, z_m, torch.ones(3), perm)
    with pytest.raises(ValueError, match='z_a holds a batch of 1'):
        loss(z_a[:1], z_b[:1], z_m[:1], 0.5, torch.zeros(1, dtype=torch.long))
