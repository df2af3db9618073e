"""ImageViewsDataPreprocessor: every collate layout -> one (B[, V], 3, H, W) normalised tensor."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.data_preprocessors import ImageViewsDataPreprocessor

MEAN, STD = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)


def _views(b: int = 3, v: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, v, 3, 5, 5), dtype=torch.uint8, generator=g)


def _reference(x: torch.Tensor) -> torch.Tensor:
    """(x / 255 - mean) / std in float64, channel by channel."""
    out = x.double() / 255.0
    for c in range(3):
        out[..., c, :, :] = (out[..., c, :, :] - MEAN[c]) / STD[c]
    return out.float()


def test_all_view_layouts_agree_with_the_formula() -> None:
    pre = ImageViewsDataPreprocessor(MEAN, STD)
    x = _views()
    expected = _reference(x)
    layouts = {
        'stacked': x,
        'default_collate': [x[:, v] for v in range(2)],
        'pseudo_collate': [[x[b, v] for b in range(3)] for v in range(2)],
    }
    for name, inputs in layouts.items():
        out = pre({'inputs': inputs, 'data_samples': None})
        assert out['inputs'].shape == (3, 2, 3, 5, 5), name
        torch.testing.assert_close(out['inputs'], expected, msg=lambda m: f'{name}: {m}')


def test_single_images_floats_and_samples() -> None:
    pre = ImageViewsDataPreprocessor(MEAN, STD)
    x = _views(4, 1)[:, 0]
    out = pre({'inputs': list(x), 'data_samples': {'gt_label': [1, 2, 3, 4]}})
    torch.testing.assert_close(out['inputs'], _reference(x))
    assert out['data_samples']['gt_label'].tolist() == [1, 2, 3, 4]
    # floats are taken as [0, 1] images
    torch.testing.assert_close(pre({'inputs': x.float() / 255.0})['inputs'], _reference(x))


def test_errors_name_the_problem() -> None:
    pre = ImageViewsDataPreprocessor()
    with pytest.raises(ValueError, match='must all have one shape'):
        pre({'inputs': [torch.zeros(3, 4, 4), torch.zeros(3, 5, 5)]})
    with pytest.raises(ValueError, match='images have 1 channels but mean/std have 3'):
        pre({'inputs': torch.zeros(2, 1, 4, 4)})
    with pytest.raises(KeyError, match="'inputs' key"):
        pre({'img': torch.zeros(2, 3, 4, 4)})
    with pytest.raises(ValueError, match='std must be > 0'):
        ImageViewsDataPreprocessor(std=(1.0, 0.0, 1.0))
