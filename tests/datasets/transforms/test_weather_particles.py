"""Direct tests of the particle-layer helpers shared by the rain and snow corruptions."""
import math

import torch

from geo3d.datasets.transforms.weather.particles import (composite_layer, occlusion_mask,
                                                          sparse_impulses)


def test_sparse_impulses_density_range_and_seed():
    like = torch.zeros(1)
    a = sparse_impulses(2, 64, 64, 0.1, torch.Generator().manual_seed(0), like, low=0.4)
    b = sparse_impulses(2, 64, 64, 0.1, torch.Generator().manual_seed(0), like, low=0.4)
    assert a.shape == (2, 1, 64, 64)
    assert torch.equal(a, b)
    nz = a[a > 0]
    assert abs((a > 0).float().mean().item() - 0.1) < 0.02
    assert nz.min() >= 0.4 and nz.max() <= 1.0


def test_occlusion_mask_is_the_soft_step():
    depth = torch.tensor([1.0, 5.0, 10.0]).view(1, 1, 1, 3)
    m = occlusion_mask(depth, layer_depth=5.0, softness=0.1)
    expected = [1 / (1 + math.exp(-(d - 5.0) / 0.5)) for d in (1.0, 5.0, 10.0)]
    assert torch.allclose(m.flatten(), torch.tensor(expected), atol=1e-6)
    assert occlusion_mask(None, 5.0) == 1.0


def test_composite_layer_alpha_blend():
    image = torch.full((1, 3, 2, 2), 0.2)
    coverage = torch.tensor([0.0, 0.5, 1.0, 2.0]).view(1, 1, 2, 2)
    out = composite_layer(image, coverage, (1.0, 0.5, 0.0), opacity=0.8)
    a = 0.8 * coverage.clamp(0, 1)
    for ch, c in enumerate((1.0, 0.5, 0.0)):
        assert torch.allclose(out[:, ch:ch + 1], 0.2 * (1 - a) + c * a)
