"""Uncertainty head loss: Laplacian / Gaussian NLL of the photometric error (Poggi et al.)."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.depth.uncertainty import PhotometricUncertaintyLoss, uncertainty_nll


def test_closed_forms():
    e = torch.tensor([0.2, 0.5]).view(1, 1, 1, 2)
    s = torch.tensor([0.4, 0.1]).view(1, 1, 1, 2)
    lap = uncertainty_nll(e, s, 'laplace')
    gau = uncertainty_nll(e, s, 'gaussian')
    torch.testing.assert_close(lap.flatten(), torch.tensor([0.5 + math.log(0.4),
                                                            5.0 + math.log(0.1)]))
    torch.testing.assert_close(gau.flatten(), torch.tensor([0.125 + math.log(0.4),
                                                            12.5 + math.log(0.1)]))
    # the floor keeps log finite
    assert torch.isfinite(uncertainty_nll(e, torch.zeros_like(s))).all()


@pytest.mark.parametrize('dist', ['laplace', 'gaussian'])
def test_the_minimiser_is_sigma_equal_to_the_error(dist):
    e = torch.tensor([0.05, 0.3, 0.7], dtype=torch.float64).view(1, 1, 1, 3)
    s = e.clone().requires_grad_(True)
    uncertainty_nll(e, s, dist).sum().backward()
    torch.testing.assert_close(s.grad, torch.zeros_like(s), atol=1e-12, rtol=0)
    # and a sigmoid head trained on it gets there
    logit = torch.zeros(1, 1, 1, 3, requires_grad=True)
    loss_fn = PhotometricUncertaintyLoss(dist)
    opt = torch.optim.Adam([logit], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(torch.sigmoid(logit), e.float()).backward()
        opt.step()
    torch.testing.assert_close(torch.sigmoid(logit).detach(), e.float(), atol=2e-3, rtol=0)


def test_gradcheck_float64():
    e = torch.rand(1, 1, 3, 4, dtype=torch.float64)
    s = (torch.rand(1, 1, 3, 4, dtype=torch.float64) + 0.1).requires_grad_(True)
    for dist in ('laplace', 'gaussian'):
        assert torch.autograd.gradcheck(lambda x: uncertainty_nll(e, x, dist), (s,))
    # the error is a constant: no gradient flows into it
    e2 = e.clone().requires_grad_(True)
    uncertainty_nll(e2, s).sum().backward()
    assert e2.grad is None


def test_sigma_is_resized_to_the_error_and_errors_are_clear():
    loss = PhotometricUncertaintyLoss()
    out = loss(torch.full((2, 1, 4, 6), 0.5), torch.full((2, 1, 8, 12), 0.5))
    torch.testing.assert_close(out, torch.tensor(1.0 + math.log(0.5)))
    with pytest.raises(ValueError, match=r'sigma and error must be \(B, 1, H, W\)'):
        loss(torch.rand(2, 2, 4, 6), torch.rand(2, 1, 4, 6))
    with pytest.raises(ValueError, match="distribution must be one of"):
        PhotometricUncertaintyLoss('cauchy')
    with pytest.raises(ValueError, match='min_sigma must be > 0'):
        PhotometricUncertaintyLoss(min_sigma=0)
