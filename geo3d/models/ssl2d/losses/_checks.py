"""Argument checks shared by the 2D SSL losses: every message names the loss and the argument."""
from __future__ import annotations

import torch
from torch import Tensor


def check_embeddings(owner: str, name: str, z: object, ndim: int = 2) -> Tensor:
    """``z`` must be a floating tensor with ``ndim`` dims; returns it."""
    if not isinstance(z, Tensor):
        raise ValueError(f'{owner}: {name} must be a torch.Tensor, got {type(z).__name__}')
    if z.ndim != ndim:
        raise ValueError(f'{owner}: {name} must have {ndim} dims, got shape {tuple(z.shape)}')
    if not torch.is_floating_point(z):
        raise ValueError(f'{owner}: {name} must be a floating tensor, got {z.dtype}')
    return z


def check_same_shape(owner: str, name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """``a`` and ``b`` must have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f'{owner}: {name_a} has shape {tuple(a.shape)} but {name_b} has shape '
                         f'{tuple(b.shape)}; they must match')


def check_min_batch(owner: str, name: str, n: int, minimum: int, why: str) -> None:
    """The (global) batch ``n`` must hold at least ``minimum`` samples."""
    if n < minimum:
        raise ValueError(f'{owner}: {name} holds a batch of {n}; at least {minimum} are needed '
                         f'({why})')


def check_positive(owner: str, name: str, value: float) -> float:
    """``value`` must be > 0; returns it as float."""
    if not value > 0:
        raise ValueError(f'{owner}: {name} must be > 0, got {value}')
    return float(value)


def check_nonnegative(owner: str, name: str, value: float) -> float:
    """``value`` must be >= 0; returns it as float."""
    if not value >= 0:
        raise ValueError(f'{owner}: {name} must be >= 0, got {value}')
    return float(value)
