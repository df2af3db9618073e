"""CACRLoss against per-sample float64 loops with explicit distances, closed forms, errors."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.ssl2d.losses.cacr import CACRLoss
from tests.models.ssl2d.helpers import assert_matches_reference, unit


def sq(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return ((u - v) ** 2).sum()


def loop_cacr(z, alpha, beta, tau_pos, tau_neg) -> torch.Tensor:
    n, views, _ = z.shape
    z = unit(z)
    attraction = z.new_zeros(())
    for b in range(n):
        for q in range(views):
            costs = [sq(z[b, q], z[b, k]) for k in range(views) if k != q]
            den = sum(torch.exp(tau_pos * c) for c in costs)
            attraction = attraction + sum(torch.exp(tau_pos * c) / den * alpha * c for c in costs)
    attraction = attraction / (n * views)
    repulsion, pairs = z.new_zeros(()), 0
    for x in range(views):
        for y in range(x + 1, views):
            term = z.new_zeros(())
            for i in range(n):
                costs = [sq(z[i, x], z[j, y]) for j in range(n) if j != i]
                den = sum(torch.exp(-tau_neg * c) for c in costs)
                term = term + sum(torch.exp(-tau_neg * c) / den * (-beta) * c for c in costs)
            repulsion, pairs = repulsion + term / n, pairs + 1
    return attraction + repulsion / pairs


@pytest.mark.parametrize('views', [2, 3])
def test_matches_loop_reference(views: int) -> None:
    g = torch.Generator().manual_seed(views)
    z = torch.randn(4, views, 5, generator=g)
    hp = dict(alpha=1.5, beta=0.7, tau_pos=1.0, tau_neg=2.0)
    assert_matches_reference(CACRLoss(**hp), lambda x: loop_cacr(x, **hp), [z])


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(CACRLoss(), (z,))


def test_two_views_closed_forms() -> None:
    g = torch.Generator().manual_seed(6)
    z = torch.randn(5, 2, 4, generator=g, dtype=torch.float64)
    zn = unit(z)
    # one positive per query: its weight is 1, attraction = alpha * mean ||z1 - z2||^2
    only_attraction = CACRLoss(alpha=2.0, beta=0.0)(z)
    expected = 2.0 * ((zn[:, 0] - zn[:, 1]) ** 2).sum(1).mean()
    torch.testing.assert_close(only_attraction, expected)
    # repulsion is never positive, and with tau_neg = 0 it is the uniform mean over negatives
    rep = CACRLoss(alpha=0.0, beta=1.0, tau_neg=0.0)(z)
    d2 = ((zn[:, None, 0] - zn[None, :, 1]) ** 2).sum(-1)
    off = ~torch.eye(5, dtype=torch.bool)
    torch.testing.assert_close(rep, -d2[off].mean())
    assert float(CACRLoss(alpha=0.0)(z)) <= 0.0


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match='z must hold at least 2 views'):
        CACRLoss()(torch.randn(4, 1, 3))
    with pytest.raises(ValueError, match='z holds a batch of 1'):
        CACRLoss()(torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match='z must have 3 dims'):
        CACRLoss()(torch.randn(4, 3))
    with pytest.raises(ValueError, match='tau_neg must be >= 0'):
        CACRLoss(tau_neg=-1.0)
