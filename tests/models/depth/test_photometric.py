"""Photometric error, per-pixel minimum reprojection and auto-masking."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.depth.photometric import min_reprojection, photometric_error
from tests.models.depth.test_ssim import ssim_distance_loop


def test_photometric_error_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 5, 6, dtype=torch.float64, generator=gen)
    target = torch.rand(2, 3, 5, 6, dtype=torch.float64, generator=gen)
    pe = photometric_error(pred, target)
    assert pe.shape == (2, 1, 5, 6)
    for i in range(2):
        ssim = ssim_distance_loop(pred[i].numpy(), target[i].numpy()).mean(0)
        l1 = (pred[i] - target[i]).abs().mean(0).numpy()
        torch.testing.assert_close(pe[i, 0], torch.from_numpy(0.85 * ssim + 0.15 * l1))
    torch.testing.assert_close(photometric_error(pred, target, ssim_weight=0.0),
                               (pred - target).abs().mean(1, keepdim=True))
    assert torch.autograd.gradcheck(photometric_error, (pred[:1, :, :3, :4].requires_grad_(),
                                                        target[:1, :, :3, :4]))
    with pytest.raises(ValueError, match='ssim_weight'):
        photometric_error(pred, target, ssim_weight=1.5)
    with pytest.raises(ValueError, match='same'):
        photometric_error(pred, target[:, :2])


def test_min_reprojection_and_automask() -> None:
    # pixel 0: warped source 1 best; pixel 1: identity of source 0 best; pixel 2: source 0 best
    reproj = torch.tensor([[[[0.3, 0.5, 0.1]], [[0.2, 0.6, 0.4]]]])  # (1, 2, 1, 3)
    ident = torch.tensor([[[[0.9, 0.05, 0.8]], [[0.7, 0.9, 0.9]]]])
    r = min_reprojection(reproj, ident, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(r.loss_map[0, 0, 0], torch.tensor([0.2, 0.05, 0.1]), atol=1e-4,
                               rtol=0)  # up to the 1e-5 noise on the identity term
    assert r.automask[0, 0, 0].tolist() == [True, False, True]
    assert r.source_index[0, 0, 0].tolist() == [3, 0, 2]
    # without auto-masking: plain per-pixel minimum over sources, every pixel used
    r = min_reprojection(reproj, None)
    torch.testing.assert_close(r.loss_map[0, 0, 0], torch.tensor([0.2, 0.5, 0.1]))
    assert bool(r.automask.all())
    # avg_reprojection: mean over sources, then compared with the mean identity error
    r = min_reprojection(reproj, ident, avg_reprojection=True, noise=0.0)
    torch.testing.assert_close(r.loss_map[0, 0, 0], torch.tensor([0.25, 0.475, 0.25]))
    assert r.automask[0, 0, 0].tolist() == [True, False, True]


def test_identity_noise_breaks_ties_both_ways() -> None:
    e = torch.full((1, 1, 40, 40), 0.3)
    r = min_reprojection(e, e.clone(), generator=torch.Generator().manual_seed(0))
    frac = float(r.automask.float().mean())
    assert 0.3 < frac < 0.7  # without noise torch.min would always pick the identity term
    assert float((r.loss_map - 0.3).abs().max()) < 1e-4


def test_gradient_flows_only_to_the_winner() -> None:
    reproj = torch.tensor([[[[0.3, 0.5]], [[0.2, 0.6]]]], requires_grad=True)
    ident = torch.tensor([[[[0.9, 0.1]], [[0.7, 0.9]]]])
    min_reprojection(reproj, ident, noise=0.0).loss_map.sum().backward()
    assert reproj.grad[0, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match='reprojection_errors must be'):
        min_reprojection(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match='identity_errors'):
        min_reprojection(torch.rand(1, 2, 3, 4), torch.rand(1, 1, 3, 4))
