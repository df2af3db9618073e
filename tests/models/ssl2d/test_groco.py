"""GroCoLoss against a loop implementation of the relaxed odd-even transposition network and
the rank-group cross entropies (float64, value and gradients), ordering behaviour, errors."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip('diffsort')

from geo3d.models.ssl2d.losses.groco import GroCoLoss  # noqa: E402
from tests.models.ssl2d.helpers import assert_matches_reference, unit  # noqa: E402


def loop_soft_sort(x: list[torch.Tensor], steepness: float) -> list[list[torch.Tensor]]:
    """Relaxed odd-even transposition sort of one row; returns P[i][r]."""
    n = len(x)
    x = list(x)
    one, zero = x[0].new_ones(()), x[0].new_zeros(())
    cols = [[one if i == r else zero for i in range(n)] for r in range(n)]  # cols[r][i]
    for layer in range(n):
        for i in range(layer % 2, n - 1, 2):
            a, b = x[i], x[i + 1]
            alpha = torch.atan(steepness * (b - a)) / math.pi + 0.5
            x[i], x[i + 1] = alpha * a + (1 - alpha) * b, (1 - alpha) * a + alpha * b
            ci, cj = cols[i], cols[i + 1]
            cols[i] = [alpha * p + (1 - alpha) * q for p, q in zip(ci, cj)]
            cols[i + 1] = [(1 - alpha) * p + alpha * q for p, q in zip(ci, cj)]
    return [[cols[r][i] for r in range(n)] for i in range(n)]


def bce(p: torch.Tensor, t: float) -> torch.Tensor:
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


def loop_groco(z: torch.Tensor, k: int, steepness: float) -> torch.Tensor:
    n, views, _ = z.shape
    z = unit(z)
    other = z.detach()
    total = z.new_zeros(())
    for v in range(views):
        per_view = z.new_zeros(())
        for b in range(n):
            pos = sorted((torch.dot(z[b, v], other[b, p]) for p in range(views) if p != v),
                         key=lambda t: float(t.detach()))
            neg = sorted((torch.dot(z[b, v], other[j, v]) for j in range(n) if j != b),
                         key=lambda t: float(t.detach()))[-k:]
            entries = neg + pos
            perm = loop_soft_sort(entries, steepness)
            m = len(entries)
            for i in range(m):
                is_pos = 1.0 if i >= k else 0.0
                p_pos = sum(perm[i][r] for r in range(k, m)).clamp(0, 1)
                p_neg = sum(perm[i][r] for r in range(k)).clamp(0, 1)
                per_view = per_view + 0.5 * (bce(p_pos, is_pos) + bce(p_neg, 1 - is_pos)) / m
        total = total + per_view / n
    return total / views


@pytest.mark.parametrize('views,k', [(2, 2), (3, 3)])
def test_matches_loop_reference(views: int, k: int) -> None:
    g = torch.Generator().manual_seed(views)
    z = torch.randn(5, views, 4, generator=g)
    loss = GroCoLoss(topk_neg=k, steepness=2.0)
    assert_matches_reference(loss, lambda x: loop_groco(x, k, 2.0), [z])


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(7)
    z = torch.randn(4, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    # stop_grad detaches positives and negatives by design; check the full gradient
    assert torch.autograd.gradcheck(GroCoLoss(topk_neg=2, stop_grad=False), (z,))


def test_correct_order_costs_less() -> None:
    # views of an image agree and images are orthogonal -> positives rank on top
    z_good = torch.eye(6, dtype=torch.float64)[:, None, :].repeat(1, 2, 1)
    g = torch.Generator().manual_seed(8)
    z_bad = torch.randn(6, 2, 6, generator=g, dtype=torch.float64)
    z_bad[:, 1] = -z_bad[:, 0]  # views point away from each other
    loss = GroCoLoss(topk_neg=3, steepness=10.0)
    assert float(loss(z_good)) < 0.2 * float(loss(z_bad))
    # stop_grad changes gradients, not the value
    a = z_bad.clone().requires_grad_(True)
    b = z_bad.clone().requires_grad_(True)
    la, lb = GroCoLoss(3)(a), GroCoLoss(3, stop_grad=False)(b)
    torch.testing.assert_close(la, lb)
    la.backward()
    lb.backward()
    assert not torch.allclose(a.grad, b.grad)


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match='z holds a batch of 3; at least 4'):
        GroCoLoss(topk_neg=3)(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match='z must hold at least 2 views'):
        GroCoLoss(topk_neg=1)(torch.randn(3, 1, 4))
    with pytest.raises(ValueError, match='topk_neg must be >= 1'):
        GroCoLoss(topk_neg=0)
