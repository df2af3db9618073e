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


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    """Each loss gives the same value on CUDA as on CPU (float64)."""
    g = torch.Generator().manual_seed(0)
    z2 = [torch.randn(6, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    z3 = torch.randn(6, 3, 5, generator=g, dtype=torch.float64)
    heads = [torch.randn(6, 2, 5, generator=g, dtype=torch.float64) for _ in range(2)]
    perm, index = torch.randperm(6, generator=g), torch.arange(6)
    logits, labels = torch.randn(24, 12, generator=g, dtype=torch.float64), torch.arange(6) % 3
    cases = [
        (lambda: catalog.NTXentLoss(), lambda d: (z2[0].to(d), z2[1].to(d))),
        (lambda: catalog.BarlowTwinsLoss(), lambda d: (z2[0].to(d), z2[1].to(d))),
        (lambda: catalog.DCLWLoss(), lambda d: (z2[0].to(d), z2[1].to(d))),
        (lambda: catalog.MixedBarlowTwinsLoss(),
         lambda d: (z2[0].to(d), z2[1].to(d), z2[2].to(d), 0.3, perm.to(d))),
        (lambda: catalog.MoCHiLoss(num_hard=2, num_mix=0, num_query_mix=0),
         lambda d: (z2[0].to(d), z2[1].to(d), z2[2].to(d))),
        (lambda: catalog.CACRLoss(), lambda d: (z3.to(d),)),
        (lambda: catalog.ISogCLRLoss(6).double().eval(),
         lambda d: (z2[0].to(d), z2[1].to(d), index.to(d))),
        (lambda: (torch.manual_seed(0), catalog.AMCLLoss(dim=5, num_heads=2).double())[1],
         lambda d: (heads[0].to(d), heads[1].to(d))),
        (lambda: catalog.SLALoss(), lambda d: (logits.to(d), labels.to(d))),
    ]
    if importlib.util.find_spec('diffsort') is not None:
        cases.append((lambda: catalog.GroCoLoss(topk_neg=3), lambda d: (z3.to(d),)))
    for build, args in cases:
        cpu = build()(*args('cpu'))
        gpu = build().cuda()(*args('cuda'))
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-11)
    hard = catalog.mix_hard_negatives(z2[0].cuda(), z2[2].cuda(), 3, 4, 2,
                                      torch.Generator(device='cuda').manual_seed(0))
    assert hard.negatives.is_cuda and hard.negatives.shape == (6, 6, 5)
