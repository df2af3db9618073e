"""Shared checks for the 2D SSL loss tests."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def double_leaves(*tensors: Tensor) -> list[Tensor]:
    """Fresh float64 leaves that require grad."""
    return [t.detach().clone().double().requires_grad_(True) for t in tensors]


def assert_matches_reference(fn: Callable[..., Tensor], ref: Callable[..., Tensor],
                             tensors: Sequence[Tensor], rtol: float = 1e-9,
                             atol: float = 1e-11) -> Tensor:
    """``fn`` and ``ref`` agree in value and in the autograd gradients w.r.t. ``tensors``
    (all in float64). Returns the value."""
    a, b = double_leaves(*tensors), double_leaves(*tensors)
    la, lb = fn(*a), ref(*b)
    torch.testing.assert_close(la, lb, rtol=rtol, atol=atol)
    ga = torch.autograd.grad(la, a, allow_unused=True)
    gb = torch.autograd.grad(lb, b, allow_unused=True)
    for i, (x, y, t) in enumerate(zip(ga, gb, a)):
        x = torch.zeros_like(t) if x is None else x
        y = torch.zeros_like(t) if y is None else y
        torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-9, msg=lambda m: f'grad {i}: {m}')
    assert any(g is not None and float(g.abs().max()) > 0 for g in ga), 'all gradients are zero'
    return la.detach()


def unit(v: Tensor) -> Tensor:
    """Row normalisation written out (not F.normalize)."""
    return v / torch.sqrt((v * v).sum(-1, keepdim=True))
