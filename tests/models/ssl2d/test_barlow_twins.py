"""BarlowTwinsLoss against explicit per-entry loops, the decorrelated zero case, errors."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.ssl2d.losses.barlow_twins import BarlowTwinsLoss, cross_correlation
from tests.models.ssl2d.helpers import assert_matches_reference


def loop_standardize(z: torch.Tensor, eps: float) -> list[list[torch.Tensor]]:
    n, d = z.shape
    cols = []
    for i in range(d):
        mean = sum(z[b, i] for b in range(n)) / n
        var = sum((z[b, i] - mean) ** 2 for b in range(n)) / n
        cols.append([(z[b, i] - mean) / torch.sqrt(var + eps) for b in range(n)])
    return cols  # cols[i][b]


def loop_barlow_twins(z_a: torch.Tensor, z_b: torch.Tensor, lam: float,
                      eps: float) -> torch.Tensor:
    n, d = z_a.shape
    sa, sb = loop_standardize(z_a, eps), loop_standardize(z_b, eps)
    total = z_a.new_zeros(())
    for i in range(d):
        for j in range(d):
            c = sum(sa[i][b] * sb[j][b] for b in range(n)) / n
            total = total + ((1 - c) ** 2 if i == j else lam * c ** 2)
    return total


def test_matches_loop_reference_value_and_grads() -> None:
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    loss = BarlowTwinsLoss(lambda_offdiag=0.3, eps=1e-5)
    assert_matches_reference(loss, lambda a, b: loop_barlow_twins(a, b, 0.3, 1e-5), [z_a, z_b])


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    z_a = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(BarlowTwinsLoss(0.0051), (z_a, z_b))


def test_zero_for_identical_decorrelated_views() -> None:
    # Hadamard columns without the constant one: zero mean, unit variance, orthogonal
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    h8 = torch.kron(torch.kron(h2, h2), h2)
    z = h8[:, 1:]  # (8, 7)
    loss = BarlowTwinsLoss(lambda_offdiag=0.5, eps=0.0)
    torch.testing.assert_close(cross_correlation(z, z, eps=0.0), torch.eye(7, dtype=z.dtype))
    assert float(loss(z, z.clone())) == pytest.approx(0.0, abs=1e-12)
    # invariant to per-dimension affine maps of either view (standardisation)
    scale = torch.arange(1, 8, dtype=z.dtype)
    assert float(loss(3.0 * z + 2.0, z * scale - 1.0)) == pytest.approx(0.0, abs=1e-12)
    # correlated dimensions are penalised by the off-diagonal term only
    z_corr = z.clone()
    z_corr[:, 1] = z[:, 0]
    lam0, lam1 = BarlowTwinsLoss(0.0, eps=0.0), BarlowTwinsLoss(0.5, eps=0.0)
    assert float(lam0(z_corr, z_corr)) == pytest.approx(0.0, abs=1e-12)
    assert float(lam1(z_corr, z_corr)) == pytest.approx(0.5 * 2, abs=1e-12)


def test_symmetric_in_views() -> None:
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    loss = BarlowTwinsLoss()
    torch.testing.assert_close(loss(z_a, z_b), loss(z_b, z_a))


def test_errors_name_the_argument() -> None:
    loss = BarlowTwinsLoss()
    with pytest.raises(ValueError, match='z_b has shape'):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match='z_a holds a batch of 1'):
        loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match='lambda_offdiag must be >= 0'):
        BarlowTwinsLoss(lambda_offdiag=-1.0)
