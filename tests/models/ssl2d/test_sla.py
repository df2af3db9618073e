"""SLA: rotations, joint labels ``label * 4 + rotation``, the joint CE and SLA+SD against
per-row loops, aggregation, errors."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.ssl2d.losses.sla import (SLALoss, SLASDLoss, aggregate_joint_logits,
                                           joint_labels, rotate_views)
from tests.models.ssl2d.helpers import assert_matches_reference


def test_rotations_and_joint_labels() -> None:
    labels = torch.tensor([3, 0])
    jl = joint_labels(labels)
    assert jl.tolist() == [12, 13, 14, 15, 0, 1, 2, 3]
    sq = torch.arange(2 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    views = rotate_views(sq)
    for b in range(2):
        for j in range(4):
            row = views[b * 4 + j]
            assert int(jl[b * 4 + j]) == int(labels[b]) * 4 + j
            # undoing j quarter turns gives the image back; j quarter turns of the plain
            # 0/1 corner pattern move the top-left corner counter-clockwise
            assert torch.equal(torch.rot90(row, -j, dims=(1, 2)), sq[b])
    corner = torch.zeros(1, 1, 2, 2)
    corner[0, 0, 0, 0] = 1.0
    cv = rotate_views(corner)
    assert cv[1, 0, 1, 0] == 1 and cv[2, 0, 1, 1] == 1 and cv[3, 0, 0, 1] == 1


def loop_sla(logits: torch.Tensor, labels: list[int], m: int) -> torch.Tensor:
    total = logits.new_zeros(())
    for b, y in enumerate(labels):
        for j in range(m):
            row = logits[b * m + j]
            total = total - (row[y * m + j] - torch.log(torch.exp(row).sum()))
    return total / (len(labels) * m)


def test_loss_matches_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    labels = [2, 0, 1]
    logits = torch.randn(12, 3 * 4, generator=g)
    assert_matches_reference(lambda x: SLALoss()(x, torch.tensor(labels)),
                             lambda x: loop_sla(x, labels, 4), [logits])
    large = SLALoss(large_loss=True)(logits, torch.tensor(labels))
    torch.testing.assert_close(large, 4 * SLALoss()(logits, torch.tensor(labels)))


def test_aggregate_matches_loop() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2 * 4, 3 * 4, generator=g)
    agg = aggregate_joint_logits(logits)
    assert agg.shape == (2, 3)
    for b in range(2):
        for y in range(3):
            expected = sum(float(logits[b * 4 + j, y * 4 + j]) for j in range(4)) / 4
            assert float(agg[b, y]) == pytest.approx(expected, rel=1e-6)


def test_sla_sd_formula_and_gradients() -> None:
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([1, 2])
    joint = torch.randn(8, 12, generator=g, dtype=torch.float64)
    single = torch.randn(2, 3, generator=g, dtype=torch.float64)
    t = 2.0
    loss = SLASDLoss(temperature=t)

    def reference(jl: torch.Tensor, sl: torch.Tensor) -> torch.Tensor:
        agg = torch.stack([sum(jl[b * 4 + j, y * 4 + j] for j in range(4)) / 4
                           for b in range(2) for y in range(3)]).view(2, 3).detach()
        p = torch.softmax(agg / t, 1)
        kl = (p * (torch.log(p) - torch.log_softmax(sl / t, 1))).sum() / 2
        ce = -torch.log_softmax(sl, 1)[torch.arange(2), labels].mean()
        return loop_sla(jl, labels.tolist(), 4) + ce + t * t * kl

    assert_matches_reference(lambda a, b: loss(a, labels, b), reference, [joint, single])
    # the aggregate target is detached by design: gradcheck w.r.t. the single-label head
    assert torch.autograd.gradcheck(lambda b: loss(joint, labels, b),
                                    (single.clone().requires_grad_(True),))


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: SLALoss()(x, torch.tensor([1, 0])), (logits,))


def test_errors_name_the_argument() -> None:
    loss = SLALoss()
    with pytest.raises(ValueError, match='joint_logits has 7 rows but labels has 2 samples'):
        loss(torch.randn(7, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='not a multiple of num_transforms=4'):
        loss(torch.randn(8, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\)'):
        loss(torch.randn(8, 8), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match='labels must be a'):
        loss(torch.randn(8, 8), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r'single_logits must have shape \(2, 2\)'):
        SLASDLoss()(torch.randn(8, 8), torch.tensor([0, 1]), torch.randn(2, 3))
    with pytest.raises(ValueError, match='images must be'):
        rotate_views(torch.randn(3, 4, 4))
