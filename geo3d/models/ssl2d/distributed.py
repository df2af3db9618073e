"""All-gather WITH gradients, for losses computed over the global batch.

Scaling convention ("the global loss on every rank")
----------------------------------------------------
A loss built with ``gather_distributed=True`` gathers the embeddings of every rank (in rank
order) with :func:`gather_cat` and computes the loss of the *global* batch. Its value is
therefore the same on every rank and equals the single-process loss of the concatenated
batch.

The backward of the gather (``torch.distributed.nn.functional.all_gather``) sums, over ranks,
the gradients that each rank's copy of the loss sends to a slice. Every rank computes the same
loss, so the gradient reaching rank ``r``'s local embeddings is ``world_size * dL/dz_r``.
DDP then *averages* parameter gradients over ranks (divides by ``world_size``), so the
parameter gradients equal those of single-process training on the global batch. Do not divide
the loss by ``world_size`` anywhere. ``tests/models/ssl2d/test_distributed_losses.py`` checks
both facts with two gloo processes.

The gather needs the same shape on every rank (use ``drop_last=True`` in the dataloader); a
mismatch raises a ``ValueError`` naming the shapes instead of hanging. Outside an initialised
process group (or with one process) every function here is the identity.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ['is_distributed', 'world_size', 'rank', 'gather_cat']

_MAX_DIMS = 8


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks, 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def _check_same_shape(x: Tensor, name: str) -> None:
    """Raise ValueError when the ranks hold tensors of different shapes."""
    if x.ndim > _MAX_DIMS:
        raise ValueError(f'gather_cat: {name} has {x.ndim} dims; at most {_MAX_DIMS} supported')
    shape = torch.full((_MAX_DIMS + 1,), -1, dtype=torch.long, device=x.device)
    shape[0] = x.ndim
    shape[1:1 + x.ndim] = torch.tensor(x.shape, dtype=torch.long)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shapes[0]) for s in shapes):
        found = [tuple(int(v) for v in s[1:1 + int(s[0])]) for s in shapes]
        raise ValueError(f'gather_cat: {name} must have the same shape on every rank '
                         f'(drop_last=True); got {found} on ranks 0..{len(found) - 1}')


def gather_cat(x: Tensor, name: str = 'tensor') -> Tensor:
    """Concatenate ``x`` from all ranks along dim 0, in rank order.

    Args:
        x: (B, ...) the local tensor; the same shape on every rank.
        name: how error messages call ``x``.

    Returns:
        (world_size * B, ...). Differentiable when ``x`` requires grad (see the module
        docstring for the gradient scale); ``x`` itself when not distributed.
    """
    if not is_distributed():
        return x
    _check_same_shape(x, name)
    if x.requires_grad:
        # Autograd-aware gather; on gloo its backward emulates reduce-scatter with all-to-all.
        from torch.distributed.nn.functional import all_gather
        return torch.cat(all_gather(x.contiguous()), dim=0)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
