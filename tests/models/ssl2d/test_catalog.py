"""Every loss of the 2D SSL catalog is registered in geo3d's MODELS under its class name and
builds from a config dict."""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import geo3d.models.ssl2d.losses as catalog
from geo3d.registry import MODELS

REQUIRED_ARGS = {'ISogCLRLoss': dict(num_samples=10), 'AMCLLoss': dict(dim=4)}
LOSSES = sorted(name for name in catalog.__all__
                if isinstance(getattr(catalog, name), type)
                and issubclass(getattr(catalog, name), nn.Module)
                and name.endswith('Loss'))


def test_catalog_lists_the_methods() -> None:
    assert set(LOSSES) == {'AMCLLoss', 'BarlowTwinsLoss', 'CACRLoss', 'DCLLoss', 'DCLWLoss',
                           'GroCoLoss', 'ISogCLRLoss', 'MixedBarlowTwinsLoss', 'MoCHiLoss',
                           'NTXentLoss', 'SLALoss', 'SLASDLoss'}


@pytest.mark.parametrize('name', LOSSES)
def test_registered_and_buildable(name: str) -> None:
    if name == 'GroCoLoss' and importlib.util.find_spec('diffsort') is None:
        pytest.skip('diffsort is not installed')
    assert MODELS.get(name) is getattr(catalog, name)
    loss = MODELS.build(dict(type=name, **REQUIRED_ARGS.get(name, {})))
    assert isinstance(loss, nn.Module)
    if name in ('NTXentLoss', 'BarlowTwinsLoss', 'DCLLoss', 'DCLWLoss'):
        assert torch.isfinite(loss(torch.randn(4, 3), torch.randn(4, 3)))
