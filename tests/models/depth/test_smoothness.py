"""Edge-aware smoothness on mean-normalised disparity, against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.depth.smoothness import edge_aware_smoothness


def test_closed_form_tiny() -> None:
    disp = torch.tensor([[[[1.0, 2.0, 4.0], [1.0, 1.0, 3.0]]]], dtype=torch.float64)  # mean 2
    img = torch.zeros(1, 3, 2, 3, dtype=torch.float64)
    img[:, :, :, 2] = 0.3  # a vertical edge between columns 1 and 2, same in every channel
    img[0, 0, 1, :] += 0.6  # red channel brighter in the bottom row
    d = disp[0, 0] / 2.0
    # x: |d[i,j]-d[i,j+1]| * exp(-mean_c |I[i,j]-I[i,j+1]|), the edge gives exp(-0.3)
    gx = [abs(d[0, 0] - d[0, 1]) * 1.0, abs(d[0, 1] - d[0, 2]) * math.exp(-0.3),
          abs(d[1, 0] - d[1, 1]) * 1.0, abs(d[1, 1] - d[1, 2]) * math.exp(-0.3)]
    # y: colour difference between the rows is 0.6 in one of three channels -> exp(-0.2)
    gy = [abs(d[0, j] - d[1, j]) * math.exp(-0.2) for j in range(3)]
    expected = sum(gx) / 4 + sum(gy) / 3
    got = edge_aware_smoothness(disp, img, eps=0.0)
    assert float(got) == pytest.approx(float(expected), abs=1e-12)
    # without normalisation the raw disparity is used (twice as large here)
    assert float(edge_aware_smoothness(disp, img, normalize=False)) == pytest.approx(
        2 * float(expected), abs=1e-12)


def test_scale_invariance_and_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    disp = torch.rand(2, 1, 4, 5, dtype=torch.float64, generator=gen) + 0.1
    img = torch.rand(2, 3, 4, 5, dtype=torch.float64, generator=gen)
    # per-image mean normalisation: scaling each image's disparity changes nothing
    scaled = disp * torch.tensor([3.0, 0.5], dtype=torch.float64).view(2, 1, 1, 1)
    assert float(edge_aware_smoothness(scaled, img, eps=0.0)) == pytest.approx(
        float(edge_aware_smoothness(disp, img, eps=0.0)), rel=1e-12)
    assert float(edge_aware_smoothness(torch.ones_like(disp), img)) == 0.0
    assert torch.autograd.gradcheck(edge_aware_smoothness, (disp.requires_grad_(), img))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match='disp must be'):
        edge_aware_smoothness(torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match='image must be'):
        edge_aware_smoothness(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 2, 2))
