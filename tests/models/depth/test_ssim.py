"""Monodepth2 SSIM distance against a slow explicit float64 loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geo3d.models.depth.ssim import ssim_distance


def ssim_distance_loop(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(C, H, W) float64: 3x3 window of the reflect-padded images, population statistics."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode='reflect')
    yp = np.pad(y, ((0, 0), (1, 1), (1, 1)), mode='reflect')
    out = np.zeros_like(x)
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                a = xp[c, i:i + 3, j:j + 3].ravel()
                b = yp[c, i:i + 3, j:j + 3].ravel()
                ma, mb = a.mean(), b.mean()
                va, vb = ((a - ma) ** 2).mean(), ((b - mb) ** 2).mean()
                cov = ((a - ma) * (b - mb)).mean()
                s = ((2 * ma * mb + c1) * (2 * cov + c2)) / (
                    (ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
                out[c, i, j] = min(max((1 - s) / 2, 0.0), 1.0)
    return out


def test_matches_explicit_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 6, 7, dtype=torch.float64, generator=gen)
    y = (x + 0.2 * torch.randn(x.shape, dtype=torch.float64, generator=gen)).clamp(0, 1)
    y[1, :, :2] = 1 - y[1, :, :2]  # anti-correlated patch: SSIM < 0 there
    got = ssim_distance(x, y)
    assert got.shape == x.shape
    for i in range(2):
        np.testing.assert_allclose(got[i].numpy(), ssim_distance_loop(x[i].numpy(), y[i].numpy()),
                                   atol=1e-12)
    assert float(got.max()) > 0.5  # the anti-correlated patch is far from 0


def test_identical_is_zero_and_symmetric_and_gradcheck() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 4, 5, dtype=torch.float64, generator=gen)
    y = torch.rand(1, 2, 4, 5, dtype=torch.float64, generator=gen)
    assert float(ssim_distance(x, x).abs().max()) < 1e-12
    torch.testing.assert_close(ssim_distance(x, y), ssim_distance(y, x))
    assert torch.autograd.gradcheck(ssim_distance, (x.requires_grad_(), y.requires_grad_()))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match='same shape'):
        ssim_distance(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match='H, W >= 2'):
        ssim_distance(torch.rand(1, 3, 1, 4), torch.rand(1, 3, 1, 4))
