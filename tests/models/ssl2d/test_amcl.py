"""AMCLLoss against a per-anchor float64 loop (temperatures computed pair by pair), gradients
w.r.t. embeddings and the temperature network, errors."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.ssl2d.losses.amcl import AMCLLoss
from tests.models.ssl2d.helpers import double_leaves, unit


def loop_amcl(loss: AMCLLoss, z_a, z_b) -> torch.Tensor:
    n, heads, d = z_a.shape
    beta, k = loss.beta, loss.topk

    def om(t):
        return d / 2 * torch.log(t) + 1 / t

    total = z_a.new_zeros(())
    for c in range(heads):
        a, b = unit(z_a[:, c]), unit(z_b[:, c])
        for x, y in ((a, b), (b, a)):
            direction = z_a.new_zeros(())
            for i in range(n):
                negs = [x[j] for j in range(n) if j != i] + [y[j] for j in range(n) if j != i]
                order = sorted(range(len(negs)),
                               key=lambda m: -float(torch.dot(x[i], negs[m]).detach()))
                chosen = order[:k]
                tau_p = loss.temperature(x[i], y[i])
                term = -torch.dot(x[i], y[i]) / tau_p + beta * om(tau_p)
                for m in chosen:
                    tau_n = loss.temperature(x[i], negs[m])
                    term = term + (torch.dot(x[i], negs[m]) / tau_n
                                   - beta * om(tau_n)) / len(chosen)
                direction = direction + term / n
            total = total + 0.5 * direction
    return total


@pytest.mark.parametrize('topk', [1, 3])
def test_matches_loop_reference_including_temperature_net(topk: int) -> None:
    torch.manual_seed(0)
    loss = AMCLLoss(dim=4, num_heads=2, beta=0.1, topk=topk, hidden_dim=6).double()
    g = torch.Generator().manual_seed(topk)
    z = torch.randn(4, 2, 4, generator=g), torch.randn(4, 2, 4, generator=g)
    a, b = double_leaves(*z), double_leaves(*z)
    params = list(loss.parameters())
    la, lb = loss(*a), loop_amcl(loss, *b)
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-10)
    ga = torch.autograd.grad(la, a + params)
    gb = torch.autograd.grad(lb, b + params)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10)
    assert float(ga[-1].abs().sum()) > 0  # the temperature network is trained


def test_gradcheck() -> None:
    torch.manual_seed(1)
    loss = AMCLLoss(dim=3, num_heads=2, topk=2, tau_min=0.05).double()
    g = torch.Generator().manual_seed(2)
    z_a = torch.randn(3, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(3, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (z_a, z_b))


def test_temperatures_in_range_and_omega() -> None:
    loss = AMCLLoss(dim=8, tau_min=0.1, tau_max=0.5)
    g = torch.Generator().manual_seed(3)
    tau = loss.temperature(unit(torch.randn(50, 8, generator=g)),
                           unit(torch.randn(50, 8, generator=g)))
    assert bool(((tau >= 0.1) & (tau <= 0.5)).all())
    from geo3d.models.ssl2d.losses.amcl import omega
    assert float(omega(torch.tensor(0.5), 8)) == pytest.approx(4 * math.log(0.5) + 2)


def test_errors_name_the_argument() -> None:
    loss = AMCLLoss(dim=4, num_heads=3)
    with pytest.raises(ValueError, match=r'z_a must have shape \(B, 3, 4\)'):
        loss(torch.randn(4, 2, 4), torch.randn(4, 2, 4))
    with pytest.raises(ValueError, match='z_b has shape'):
        loss(torch.randn(4, 3, 4), torch.randn(5, 3, 4))
    with pytest.raises(ValueError, match='z_a holds a batch of 1'):
        loss(torch.randn(1, 3, 4), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match='tau_max must exceed tau_min'):
        AMCLLoss(dim=4, tau_min=1.0, tau_max=0.5)
