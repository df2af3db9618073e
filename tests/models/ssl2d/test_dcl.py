"""DCLLoss / DCLWLoss against per-anchor float64 loops, comparison with NT-Xent, errors."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.ssl2d.losses.dcl import DCLLoss, DCLWLoss, vmf_weights
from geo3d.models.ssl2d.losses.nt_xent import NTXentLoss
from tests.models.ssl2d.helpers import assert_matches_reference, unit


def loop_dcl(z_a, z_b, tau: float, sigma: float | None = None) -> torch.Tensor:
    n = z_a.shape[0]
    a, b = unit(z_a), unit(z_b)
    if sigma is None:
        w = [1.0] * n
    else:  # w_i = 2 - N exp(cos_i / sigma) / sum_k exp(cos_k / sigma), no gradient
        cos = [float(torch.dot(a[i], b[i]).detach()) for i in range(n)]
        den = sum(math.exp(c / sigma) for c in cos)
        w = [2 - n * math.exp(c / sigma) / den for c in cos]
    total = z_a.new_zeros(())
    for x, y in ((a, b), (b, a)):
        for i in range(n):
            neg = sum(torch.exp(torch.dot(x[i], x[k]) / tau)
                      + torch.exp(torch.dot(x[i], y[k]) / tau) for k in range(n) if k != i)
            total = total - w[i] * torch.dot(x[i], y[i]) / tau + torch.log(neg)
    return total / (2 * n)


def make(seed: int, n: int = 5, d: int = 6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def test_dcl_matches_loop_reference() -> None:
    z_a, z_b = make(0)
    assert_matches_reference(DCLLoss(0.2), lambda a, b: loop_dcl(a, b, 0.2), [z_a, z_b])


def test_dclw_matches_loop_reference() -> None:
    z_a, z_b = make(1)
    assert_matches_reference(DCLWLoss(0.2, sigma=0.5), lambda a, b: loop_dcl(a, b, 0.2, 0.5),
                             [z_a, z_b])


def test_gradcheck() -> None:
    z_a, z_b = (t.double().requires_grad_(True) for t in make(2, n=3, d=4))
    assert torch.autograd.gradcheck(DCLLoss(0.5), (z_a, z_b))
    # DCLW's weights carry no gradient by design: check with them frozen at this point
    dclw = DCLWLoss(0.5, 0.5)
    frozen = vmf_weights(unit(z_a.detach()), unit(z_b.detach()), 0.5)
    dclw._weights = lambda a, b: frozen
    assert torch.autograd.gradcheck(dclw, (z_a, z_b))


@pytest.mark.parametrize('seed', [3, 4])
def test_below_nt_xent_by_the_positive_in_the_denominator(seed: int) -> None:
    z_a, z_b = (t.double() for t in make(seed))
    tau = 0.3
    dcl, ntx = DCLLoss(tau)(z_a, z_b), NTXentLoss(tau)(z_a, z_b)
    assert float(dcl) < float(ntx)
    # NT-Xent - DCL = mean over the 2N anchors of log(1 + e^{pos} / sum_neg)
    a, b = unit(z_a), unit(z_b)
    gap = 0.0
    for x, y in ((a, b), (b, a)):
        for i in range(len(x)):
            neg = sum(math.exp(float(x[i] @ x[k]) / tau) + math.exp(float(x[i] @ y[k]) / tau)
                      for k in range(len(x)) if k != i)
            gap += math.log1p(math.exp(float(x[i] @ y[i]) / tau) / neg)
    assert float(ntx - dcl) == pytest.approx(gap / (2 * len(a)), rel=1e-10)


def test_dclw_weights() -> None:
    z_a, z_b = make(5)
    w = vmf_weights(z_a, z_b, 0.5)
    assert w.shape == (5,) and not w.requires_grad
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-6)
    # the best-aligned pair gets the smallest weight
    cos = torch.nn.functional.cosine_similarity(z_a, z_b)
    assert int(w.argmin()) == int(cos.argmax())
    # sigma -> infinity gives uniform weights, i.e. DCL
    torch.testing.assert_close(DCLWLoss(0.2, sigma=1e9)(z_a, z_b), DCLLoss(0.2)(z_a, z_b))
    assert not torch.allclose(DCLWLoss(0.2, sigma=0.5)(z_a, z_b), DCLLoss(0.2)(z_a, z_b))


def test_symmetric_in_views() -> None:
    z_a, z_b = make(6)
    torch.testing.assert_close(DCLWLoss()(z_a, z_b), DCLWLoss()(z_b, z_a))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match='DCLLoss: z_a has shape .* but z_b has shape'):
        DCLLoss()(torch.randn(4, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match='DCLWLoss: z_a holds a batch of 1'):
        DCLWLoss()(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match='DCLWLoss: sigma must be > 0'):
        DCLWLoss(sigma=0.0)
