"""Projector / predictor MLPs against a float64 re-statement of Linear-BN-ReLU."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from geo3d.models.ssl2d.necks import MultiHeadProjection, PredictionMLP, ProjectionMLP


def _bn_train(h: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """Training-mode batch norm written out: biased batch variance."""
    mean = h.mean(0)
    var = ((h - mean) ** 2).mean(0)
    out = (h - mean) / torch.sqrt(var + bn.eps)
    if bn.affine:
        out = out * bn.weight.double() + bn.bias.double()
    return out


def test_projection_matches_explicit_layers() -> None:
    torch.manual_seed(0)
    neck = ProjectionMLP(6, hidden_channels=5, out_channels=4, num_layers=3, with_bn=True,
                         with_last_bn=True, last_bn_affine=False)
    linears = [m for m in neck.mlp if isinstance(m, nn.Linear)]
    bns = [m for m in neck.mlp if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == 3 and len(bns) == 3
    assert all(lin.bias is None for lin in linears)  # every linear layer is followed by BN
    assert not bns[-1].affine
    x = torch.randn(7, 6, dtype=torch.float64)
    h = x
    for i, lin in enumerate(linears):
        h = _bn_train(h @ lin.weight.double().T, bns[i])
        if i < 2:
            h = h.clamp_min(0)
    torch.testing.assert_close(neck.double()(x), h)


def test_projection_without_bn_and_predictor_defaults() -> None:
    torch.manual_seed(1)
    neck = ProjectionMLP(4, hidden_channels=3, out_channels=2, num_layers=2, with_bn=False)
    l1, l2 = [m for m in neck.mlp if isinstance(m, nn.Linear)]
    assert l1.bias is not None and l2.bias is not None
    x = torch.randn(5, 4)
    torch.testing.assert_close(neck(x), (x @ l1.weight.T + l1.bias).clamp_min(0) @ l2.weight.T
                               + l2.bias)
    pred = PredictionMLP(8)
    assert pred.out_channels == 8 and pred(torch.randn(3, 8)).shape == (3, 8)
    assert ProjectionMLP(4, out_channels=3, num_layers=1).mlp[0].in_features == 4


def test_multi_head_stacks_independent_heads() -> None:
    torch.manual_seed(2)
    neck = MultiHeadProjection(6, num_heads=3, hidden_channels=5, out_channels=4)
    x = torch.randn(2, 6)
    out = neck(x)
    assert out.shape == (2, 3, 4)
    for c in range(3):
        torch.testing.assert_close(out[:, c], neck.heads[c](x))
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match='num_layers must be >= 1'):
        ProjectionMLP(4, num_layers=0)
    with pytest.raises(ValueError, match=r'input must be \(B, 4\)'):
        ProjectionMLP(4)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match='num_heads must be >= 1'):
        MultiHeadProjection(4, num_heads=0)
