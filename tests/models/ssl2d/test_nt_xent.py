"""NTXentLoss against a per-anchor float64 loop, closed form, symmetry, errors."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.ssl2d.losses.nt_xent import NTXentLoss
from geo3d.registry import MODELS
from tests.models.ssl2d.helpers import assert_matches_reference, unit


def loop_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    n = z_a.shape[0]
    z = unit(torch.cat([z_a, z_b]))
    total = z.new_zeros(())
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        den = sum(torch.exp(torch.dot(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(torch.dot(z[i], z[j]) / tau) / den)
    return total / (2 * n)


def test_matches_loop_reference_value_and_grads() -> None:
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    loss = NTXentLoss(temperature=0.3)
    assert_matches_reference(loss, lambda a, b: loop_nt_xent(a, b, 0.3), [z_a, z_b])


def test_float32_close_to_float64() -> None:
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    loss = NTXentLoss(0.1)
    torch.testing.assert_close(loss(z_a, z_b).double(), loss(z_a.double(), z_b.double()),
                               rtol=1e-5, atol=1e-5)


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(2)
    z_a = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(NTXentLoss(0.5), (z_a, z_b))


def test_symmetric_in_views_and_batch_order() -> None:
    g = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    loss = NTXentLoss(0.2)
    torch.testing.assert_close(loss(z_a, z_b), loss(z_b, z_a))
    perm = torch.randperm(6, generator=g)
    torch.testing.assert_close(loss(z_a, z_b), loss(z_a[perm], z_b[perm]))
    # scale-invariant: embeddings are normalised
    torch.testing.assert_close(loss(z_a, z_b), loss(3.0 * z_a, 0.5 * z_b))


@pytest.mark.parametrize('tau', [0.1, 0.5])
def test_aligned_orthogonal_embeddings_closed_form(tau: float) -> None:
    # identical views, different samples orthogonal: l_i = log(1 + (2B - 2) e^{-1/tau})
    b = 4
    z = torch.eye(b, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 3.0])[:, None]
    expected = math.log(1 + (2 * b - 2) * math.exp(-1 / tau))
    assert float(NTXentLoss(tau)(z, z.clone())) == pytest.approx(expected, rel=1e-12)
    if tau == 0.1:  # near the lower bound 0
        assert expected < 1e-3
    # misaligned views cost more
    g = torch.Generator().manual_seed(4)
    noisy = z + 0.5 * torch.randn(b, b, generator=g, dtype=torch.float64)
    assert float(NTXentLoss(tau)(z, noisy)) > expected


def test_registry_build() -> None:
    loss = MODELS.build(dict(type='NTXentLoss', temperature=0.2, gather_distributed=True))
    assert isinstance(loss, NTXentLoss) and loss.temperature == 0.2


def test_errors_name_the_argument() -> None:
    loss = NTXentLoss()
    with pytest.raises(ValueError, match='z_b has shape'):
        loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match='z_a holds a batch of 1'):
        loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match='z_a must have 2 dims'):
        loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match='z_a must be a floating'):
        loss(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='temperature must be > 0'):
        NTXentLoss(temperature=0.0)
