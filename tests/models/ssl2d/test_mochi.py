"""MoCHi: the synthetic negatives (hardest-k, convex mixes, unit norm) and the InfoNCE loss
against a per-query float64 loop."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.ssl2d.losses.mochi import MoCHiLoss, mix_hard_negatives
from tests.models.ssl2d.helpers import assert_matches_reference, unit


def make(seed: int = 0, b: int = 3, k: int = 12, d: int = 5):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=g, dtype=torch.float64),
            torch.randn(b, d, generator=g, dtype=torch.float64),
            unit(torch.randn(k, d, generator=g, dtype=torch.float64)))


def nonneg_combination(target, u, v) -> tuple[float, float, float]:
    """Least-squares a, b with target ~ a u + b v; returns (a, b, residual)."""
    basis = torch.stack([u, v], dim=1)
    coef = torch.linalg.lstsq(basis, target[:, None]).solution[:, 0]
    return float(coef[0]), float(coef[1]), float((basis @ coef - target).norm())


def test_synthetic_negatives_are_unit_convex_mixes_of_the_hardest() -> None:
    q, _, queue = make()
    n_hard = 4
    hard = mix_hard_negatives(q, queue, n_hard, 6, 3, torch.Generator().manual_seed(1))
    assert hard.negatives.shape == (3, 9, 5) and not hard.negatives.requires_grad
    torch.testing.assert_close(hard.negatives.norm(dim=2), torch.ones(3, 9, dtype=q.dtype))
    qn = unit(q)
    for b in range(3):
        sims = [float(qn[b] @ queue[j]) for j in range(len(queue))]
        hardest = sorted(range(len(queue)), key=lambda j: -sims[j])[:n_hard]
        assert hard.hardest[b].tolist() == hardest
        for s in range(6):
            i, j = int(hard.mix_i[b, s]), int(hard.mix_j[b, s])
            assert i in hardest and j in hardest
            assert 0.0 <= float(hard.alpha[b, s]) <= 1.0
            if i != j:
                a, c, res = nonneg_combination(hard.negatives[b, s], queue[i], queue[j])
                assert res < 1e-10 and a >= -1e-12 and c >= -1e-12
                ratio = float(hard.alpha[b, s]) / (1 - float(hard.alpha[b, s]))
                assert a / c == pytest.approx(ratio, rel=1e-8)
        for s in range(3):
            j = int(hard.query_j[b, s])
            assert j in hardest and 0.0 <= float(hard.beta[b, s]) <= 0.5
            a, c, res = nonneg_combination(hard.negatives[b, 6 + s], qn[b], queue[j])
            assert res < 1e-10 and a >= -1e-12 and c >= -1e-12


def loop_infonce(q, k, queue, synthetic, tau: float) -> torch.Tensor:
    qn, kn = unit(q), unit(k.detach())
    total = q.new_zeros(())
    for b in range(q.shape[0]):
        pos = torch.exp(torch.dot(qn[b], kn[b]) / tau)
        den = pos + sum(torch.exp(torch.dot(qn[b], n) / tau) for n in queue)
        if synthetic is not None:
            den = den + sum(torch.exp(torch.dot(qn[b], h) / tau) for h in synthetic[b])
        total = total - torch.log(pos / den)
    return total / q.shape[0]


def test_loss_matches_loop_reference() -> None:
    q, k, queue = make(2)
    loss = MoCHiLoss(temperature=0.2, num_hard=5, num_mix=4, num_query_mix=2)
    synthetic = mix_hard_negatives(q, queue, 5, 4, 2, torch.Generator().manual_seed(7)).negatives

    def ours(q_, k_):
        return loss(q_, k_, queue, torch.Generator().manual_seed(7))

    def ref(q_, k_):
        return loop_infonce(q_, k_, queue, synthetic, 0.2)

    assert_matches_reference(ours, ref, [q, k])


def test_without_mixing_is_moco_infonce() -> None:
    q, k, queue = make(3)
    loss = MoCHiLoss(temperature=0.2, num_hard=0, num_mix=0, num_query_mix=0)
    torch.testing.assert_close(loss(q, k, queue), loop_infonce(q, k, queue, None, 0.2))
    # hard negatives make the task harder: the loss grows
    mixed = MoCHiLoss(temperature=0.2, num_hard=4, num_mix=8, num_query_mix=4)
    assert float(mixed(q, k, queue, torch.Generator().manual_seed(0))) > float(loss(q, k, queue))


def test_gradcheck_wrt_query() -> None:
    # type-1 negatives depend on q only through the (locally constant) hardest set; type-2
    # negatives contain q but are detached by design, so they are left out here
    q, k, queue = make(4, b=2, k=6, d=3)
    q.requires_grad_(True)
    loss = MoCHiLoss(temperature=0.5, num_hard=3, num_mix=2, num_query_mix=0)
    assert torch.autograd.gradcheck(
        lambda x: loss(x, k, queue, torch.Generator().manual_seed(3)), (q,))


def test_errors_name_the_argument() -> None:
    q, k, queue = make()
    with pytest.raises(ValueError, match='queue holds 12 keys, fewer than num_hard=20'):
        MoCHiLoss(num_hard=20, num_mix=2, num_query_mix=0)(q, k, queue)
    with pytest.raises(ValueError, match='queue has dim 4'):
        MoCHiLoss(num_hard=2)(q, k, queue[:, :4])
    with pytest.raises(ValueError, match='k has shape'):
        MoCHiLoss(num_hard=2)(q, k[:2], queue)
    with pytest.raises(ValueError, match='num_mix and num_query_mix must be >= 0'):
        MoCHiLoss(num_mix=-1)
