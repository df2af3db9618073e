"""Losses of Gaussian2Scene stage 2: rendered frames vs real frames, Gaussian centres vs surface.

* :func:`rgb_l1_loss` / :func:`rgb_ssim_loss`: the 3D Gaussian Splatting photometric loss
  (Kerbl et al., SIGGRAPH 2023: ``0.8 L1 + 0.2 (1 - SSIM)``), SSIM with the 3x3 box window of
  :func:`geo3d.models.depth.ssim.ssim_distance` (``1 - SSIM = 2 * ssim_distance``);
* :func:`depth_l1_loss`: L1 between the rendered expected depth and the frame's measured depth,
  where the frame has a measurement and the render is opaque (``alpha > threshold``);
* :func:`nearest_neighbors` / :func:`point_to_set_distance` / :func:`chamfer_distance`: exact
  nearest scene points of the Gaussian centres, per scene. Gaussian2Scene supervises "the
  geometric locations of Gaussian primitives"; here the target is the scene's points (a
  Chamfer distance as in Point-MAE / PiMAE is the ``'chamfer'`` option). The neighbour search
  runs without gradients (scipy's ``cKDTree`` on CPU, chunked ``torch.cdist`` with
  ``compute_mode='donot_use_mm_for_euclid_dist'`` on CUDA; both exact) and the distance to
  the found neighbour is differentiable.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from geo3d.models.depth.ssim import ssim_distance

__all__ = ['rgb_l1_loss', 'rgb_ssim_loss', 'depth_l1_loss', 'nearest_neighbors',
           'point_to_set_distance', 'chamfer_distance', 'NN_BACKENDS']

NN_BACKENDS = ('auto', 'kdtree', 'cdist')


def _masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype).expand_as(x)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def rgb_l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean ``|pred - target|`` over pixels and channels.

    Args:
        pred, target: (F, 3, H, W) images.
        mask: (F, 1, H, W) bool pixels that count; None = all.
    """
    if pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} differ')
    return _masked_mean((pred - target).abs(), mask)


def rgb_ssim_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean ``1 - SSIM`` (3x3 box statistics, clamped to [0, 2]) over pixels and channels.

    Args:
        pred, target: (F, 3, H, W) images in [0, 1], H, W >= 2.
        mask: (F, 1, H, W) bool pixels that count; None = all.
    """
    return _masked_mean(2.0 * ssim_distance(pred, target), mask)


def depth_l1_loss(pred: Tensor, target: Tensor, alpha: Tensor,
                  alpha_threshold: float = 0.5) -> Tensor:
    """Mean ``|pred - target|`` where ``target > 0`` (measured) and ``alpha > alpha_threshold``.

    Args:
        pred: (F, 1, H, W) rendered depth; target: (F, 1, H, W) measured depth, 0 = none;
        alpha: (F, 1, H, W) rendered opacity (used as a mask only, no gradient).

    Returns:
        A scalar; 0 (with a graph) when no pixel is valid.
    """
    if pred.shape != target.shape or alpha.shape != pred.shape:
        raise ValueError(f'pred {tuple(pred.shape)}, target {tuple(target.shape)} and alpha '
                         f'{tuple(alpha.shape)} must have one shape (F, 1, H, W)')
    valid = (target > 0) & (alpha.detach() > alpha_threshold)
    return _masked_mean((pred - target).abs(), valid)


def _check_points(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f'{name} must be an (N, 3) tensor of points, got {got}')


def _nn_one(query: Tensor, ref: Tensor, backend: str, chunk: int) -> Tensor:
    """(Q,) index into ``ref`` (M >= 1 rows) of every query's nearest point."""
    if backend == 'kdtree':
        from scipy.spatial import cKDTree
        tree = cKDTree(ref.detach().cpu().double().numpy())
        _, idx = tree.query(query.detach().cpu().double().numpy(), k=1)
        return torch.from_numpy(np.asarray(idx, np.int64)).to(query.device)
    out = []
    for s in range(0, query.shape[0], chunk):
        d = torch.cdist(query[s:s + chunk], ref, compute_mode='donot_use_mm_for_euclid_dist')
        out.append(d.argmin(1))
    return torch.cat(out) if out else query.new_zeros(0, dtype=torch.long)


@torch.no_grad()
def nearest_neighbors(query: Tensor, ref: Tensor, query_batch: Tensor | None = None,
                      ref_batch: Tensor | None = None,
                      backend: Literal['auto', 'kdtree', 'cdist'] = 'auto',
                      chunk: int = 1024) -> Tensor:
    """Exact nearest point of ``ref`` for every row of ``query``, within the same sample.

    Args:
        query: (Q, 3) points; ref: (M, 3) points.
        query_batch / ref_batch: (Q,) / (M,) sample index of every row (None: one sample).
        backend: ``'kdtree'`` (scipy ``cKDTree``, on the CPU), ``'cdist'`` (chunked brute force
            in torch on the tensors' device) or ``'auto'`` (kdtree for CPU tensors, cdist
            otherwise).
        chunk: query rows per ``cdist`` call.

    Returns:
        (Q,) int64 row of ``ref``. Raises ValueError when a sample has queries but no ref rows.
    """
    _check_points('query', query)
    _check_points('ref', ref)
    if backend not in NN_BACKENDS:
        raise ValueError(f'backend must be one of {NN_BACKENDS}, got {backend!r}')
    if chunk < 1:
        raise ValueError(f'chunk must be >= 1, got {chunk}')
    if (query_batch is None) != (ref_batch is None):
        raise ValueError('give both query_batch and ref_batch, or neither')
    if backend == 'auto':
        backend = 'kdtree' if query.device.type == 'cpu' else 'cdist'
    if query_batch is None:
        if ref.shape[0] == 0 and query.shape[0] > 0:
            raise ValueError('ref has no points to search')
        return _nn_one(query, ref, backend, chunk)
    if query_batch.shape != (query.shape[0],) or ref_batch.shape != (ref.shape[0],):
        raise ValueError(f'query_batch / ref_batch must be (Q,) / (M,), got '
                         f'{tuple(query_batch.shape)} / {tuple(ref_batch.shape)}')
    out = torch.empty(query.shape[0], dtype=torch.long, device=query.device)
    for b in torch.unique(query_batch).tolist():
        qi = torch.nonzero(query_batch == b).squeeze(1)
        ri = torch.nonzero(ref_batch == b).squeeze(1)
        if ri.numel() == 0:
            raise ValueError(f'sample {b} has {qi.numel()} query points but no ref points')
        out[qi] = ri[_nn_one(query[qi], ref[ri], backend, chunk)]
    return out


def point_to_set_distance(query: Tensor, ref: Tensor, query_batch: Tensor | None = None,
                          ref_batch: Tensor | None = None, squared: bool = False,
                          backend: Literal['auto', 'kdtree', 'cdist'] = 'auto',
                          chunk: int = 1024) -> Tensor:
    """(Q,) distance of every query to its nearest ref point of the same sample.

    Differentiable with respect to both ``query`` and ``ref`` (the neighbour is found without
    gradients; the distance ``|q - r|`` (or its square) is computed with them). The gradient of
    the unsquared distance at zero distance is taken as 0.
    """
    idx = nearest_neighbors(query, ref, query_batch, ref_batch, backend, chunk)
    d2 = (query - ref[idx]).pow(2).sum(1)
    if squared:
        return d2
    return torch.where(d2 > 0, d2.clamp(min=1e-30).sqrt(), d2)


def chamfer_distance(a: Tensor, b: Tensor, a_batch: Tensor | None = None,
                     b_batch: Tensor | None = None, squared: bool = False,
                     backend: Literal['auto', 'kdtree', 'cdist'] = 'auto',
                     chunk: int = 1024) -> Tensor:
    """Symmetric Chamfer distance ``mean_a d(a, B) + mean_b d(b, A)`` (per-sample sets).

    Args:
        a: (P, 3), b: (Q, 3) points; a_batch / b_batch their sample indices (None: one set).
        squared: squared distances (Chamfer-L2 as Point-MAE) instead of distances.

    Returns:
        A scalar (the means run over all rows of the batch).
    """
    ab = point_to_set_distance(a, b, a_batch, b_batch, squared, backend, chunk)
    ba = point_to_set_distance(b, a, b_batch, a_batch, squared, backend, chunk)
    return ab.mean() + ba.mean()
