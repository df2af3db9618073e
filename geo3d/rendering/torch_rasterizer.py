"""Tile-based Gaussian compositing in pure PyTorch (the CPU path of :func:`rasterize`).

Same per-pixel rule as gsplat 1.5.3's CUDA kernel (``cuda/csrc/RasterizeToPixels3DGSFwd.cu``),
itself 3D Gaussian Splatting's (Kerbl et al., SIGGRAPH 2023): pixel ``(i, j)`` has its centre at
``p = (j + 0.5, i + 0.5)``; its Gaussians are visited front to back (sorted by camera ``z``) with

    sigma = 0.5 * d^T conic d,   d = p - mean2d
    alpha = min(0.999, opacity * exp(-sigma))        skipped if sigma < 0 or alpha < 1/255
    T_next = T * (1 - alpha)                         stop (exclusive) once T_next <= 1e-4
    out += alpha * T * feature,  T = T_next

and the pixel's alpha is ``1 - T`` at the end. (gsplat's extra ``sigma < 0`` skip guards
against indefinite conics; here every conic is positive definite by construction, the blurred
2D covariance having ``det > 0`` and a positive diagonal, so ``sigma >= 0`` up to the rounding
of the polynomial form below, and that rounding must not drop the pixel at a Gaussian's centre.)

How it is made fast without a custom kernel:

1. :func:`intersect_tiles` bins every projected Gaussian into the ``tile_size`` x ``tile_size``
   tiles its pixel box touches (gsplat's ``isect_tiles``, vectorised), sorted by tile then depth.
2. :func:`composite_tiles` walks all tiles' lists together, ``chunk`` Gaussians at a time: for
   the active tiles (those with Gaussians left and a pixel not yet stopped) it evaluates
   ``sigma`` for (tiles, chunk, pixels) with ONE batched matmul (``sigma`` is a quadratic
   polynomial in tile-local pixel coordinates, so ``-sigma = coef(gaussian, tile) @ Phi(p)``),
   runs the transmittance recursion as a ``cumprod`` along the chunk, and carries each pixel's
   transmittance and "stopped" flag to the next chunk. Tiles whose pixels have all stopped
   drop out (opaque scenes stop early). Work and memory are
   ``O(tile_size^2 * number of tile-Gaussian intersections)``, not ``O(pixels * Gaussians)``.
3. Each step is one autograd Function with the closed-form compositing gradient
   (:mod:`.composite_chunk`); everything around it (projection, gathers) is plain autograd. The
   visiting order and the skip/stop decisions are constants of the backward pass, as in
   gsplat's CUDA backward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .composite_chunk import composite_chunk

__all__ = ['TileBins', 'intersect_tiles', 'composite_tiles']


@dataclass
class TileBins:
    """Tile-Gaussian intersections of ``num_cameras`` images, sorted by (tile, depth).

    Tile ``t`` of camera ``c`` at tile row ``ty`` and column ``tx`` has the global id
    ``(c * tiles_y + ty) * tiles_x + tx``; its Gaussians, front to back, are
    ``pair_ids[offsets[t]:offsets[t + 1]]`` (indices into the packed projected pairs).
    """

    tile_size: int
    tiles_x: int
    tiles_y: int
    num_cameras: int
    pair_ids: Tensor  # (I,) int64
    offsets: Tensor  # (num_cameras * tiles_y * tiles_x + 1,) int64

    @property
    def num_tiles(self) -> int:
        return self.num_cameras * self.tiles_y * self.tiles_x

    @property
    def num_intersections(self) -> int:
        return int(self.pair_ids.shape[0])


@torch.no_grad()
def intersect_tiles(means2d: Tensor, radii: Tensor, depths: Tensor, camera_ids: Tensor,
                    num_cameras: int, width: int, height: int, tile_size: int) -> TileBins:
    """Bin projected Gaussians into the image tiles their pixel boxes overlap.

    Args:
        means2d: (M, 2) pixel centres; radii: (M, 2) box half-sizes (> 0);
        depths: (M,) sort keys (camera ``z``); camera_ids: (M,) camera of each pair.
        num_cameras, width, height: the images; tile_size: tile edge in pixels.

    Returns:
        :class:`TileBins`. A pair covers tile columns ``floor((x - rx) / ts)`` to
        ``ceil((x + rx) / ts) - 1`` (clipped to the image), rows likewise, as gsplat.
    """
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    device = means2d.device
    m = means2d.detach()
    r = radii.to(m.dtype)
    x0 = torch.floor((m[:, 0] - r[:, 0]) / tile_size).clamp(0, tiles_x).long()
    x1 = torch.ceil((m[:, 0] + r[:, 0]) / tile_size).clamp(0, tiles_x).long()
    y0 = torch.floor((m[:, 1] - r[:, 1]) / tile_size).clamp(0, tiles_y).long()
    y1 = torch.ceil((m[:, 1] + r[:, 1]) / tile_size).clamp(0, tiles_y).long()
    nx = x1 - x0
    per_pair = nx * (y1 - y0)  # (M,)

    order = torch.argsort(depths.detach(), stable=True)  # front to back, ties by index
    n_sorted = per_pair[order]
    pair = torch.repeat_interleave(order, n_sorted)  # (I,)
    start = torch.cumsum(n_sorted, 0) - n_sorted
    local = torch.arange(pair.shape[0], device=device) - torch.repeat_interleave(start, n_sorted)
    w = nx[pair]
    tile = ((camera_ids[pair] * tiles_y + y0[pair] + local // w) * tiles_x
            + x0[pair] + local % w)
    tile, perm = torch.sort(tile, stable=True)  # stable: keeps the depth order inside a tile
    n_tiles = num_cameras * tiles_y * tiles_x
    counts = torch.bincount(tile, minlength=n_tiles)
    offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return TileBins(tile_size, tiles_x, tiles_y, num_cameras, pair[perm], offsets)


def _tile_local_monomials(tile_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(P, 6) ``[x^2, x*y, y^2, x, y, 1]`` of a tile's pixel centres relative to its centre.

    ``P = tile_size**2`` in row-major order; ``x, y`` are in ``[-ts/2 + 0.5, ts/2 - 0.5]``,
    small numbers, so the polynomial form of ``sigma`` keeps float32 precision.
    """
    c = torch.arange(tile_size, dtype=dtype, device=device) + 0.5 - tile_size / 2
    y, x = torch.meshgrid(c, c, indexing='ij')
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)], -1)


def composite_tiles(bins: TileBins, means2d: Tensor, conics: Tensor, opacities: Tensor,
                    features: Tensor, width: int, height: int,
                    chunk: int = 16) -> tuple[Tensor, Tensor]:
    """Front-to-back alpha compositing of binned Gaussians, with gsplat's per-pixel rule.

    Args:
        bins: intersections from :func:`intersect_tiles`.
        means2d: (M, 2); conics: (M, 3); opacities: (M,); features: (M, D) of the pairs.
        width, height: image size.
        chunk: Gaussians per tile handled per step (memory/overhead trade-off; the result does
            not depend on it).

    Returns:
        ``(acc, T)``: (C, H, W, D) ``sum_i alpha_i T_i feature_i`` and (C, H, W) the
        transmittance left after the last contributing Gaussian.
    """
    ts = bins.tile_size
    n_tiles, p = bins.num_tiles, ts * ts
    dtype, device = means2d.dtype, means2d.device
    d = features.shape[-1]
    phi_t = _tile_local_monomials(ts, dtype, device).T  # (6, P)

    t = torch.arange(n_tiles, device=device)
    tile_x, tile_y = t % bins.tiles_x, (t // bins.tiles_x) % bins.tiles_y
    centre_x = ((tile_x + 0.5) * ts).to(dtype)
    centre_y = ((tile_y + 0.5) * ts).to(dtype)
    pix = torch.arange(p, device=device)
    cols = tile_x[:, None] * ts + pix % ts
    rows = tile_y[:, None] * ts + pix // ts
    done = (cols >= width) | (rows >= height)  # (n_tiles, P): pixels off the image never run
    trans = torch.ones(n_tiles, p, dtype=dtype, device=device)

    counts = bins.offsets[1:] - bins.offsets[:-1]
    total = bins.num_intersections
    n_steps = -(-int(counts.max()) // chunk) if total else 0
    k_range = torch.arange(chunk, device=device)
    contribs: list[Tensor] = []
    contrib_tiles: list[Tensor] = []
    for step in range(n_steps):
        k = step * chunk + k_range  # (k,) positions in the tiles' lists
        with torch.no_grad():
            active = ((counts > step * chunk) & ~done.all(1)).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            valid = k < counts[active, None]  # (A, k)
            pid = bins.pair_ids[(bins.offsets[active, None] + k).clamp(max=total - 1)]
            done_a = done[active]  # (A, P)

        mx = means2d[pid, 0] - centre_x[active, None]  # (A, k) tile-local centres
        my = means2d[pid, 1] - centre_y[active, None]
        a, b, c = conics[pid].unbind(-1)
        neg_coef = torch.stack([-0.5 * a, -b, -0.5 * c, a * mx + b * my, b * mx + c * my,
                                -(0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my)], -1)
        opac = torch.where(valid, opacities[pid], 0.0)  # padding: alpha 0, below the threshold
        t0 = trans[active]  # (A, P) transmittance before this step
        live = torch.where(done_a, 0.0, t0)  # a stopped pixel takes nothing more
        contrib, t_out, done_new = composite_chunk(neg_coef, opac, live, features[pid], phi_t)
        contribs.append(contrib)
        contrib_tiles.append(active)
        trans = trans.index_copy(0, active, torch.where(done_a, t0, t_out))
        done = done.index_copy(0, active, done_new)

    acc = torch.zeros(n_tiles, p, d, dtype=dtype, device=device)
    if contribs:
        acc = acc.index_add(0, torch.cat(contrib_tiles), torch.cat(contribs))
    return _untile(acc, bins, width, height), _untile(trans[..., None], bins, width, height)[..., 0]


def _untile(x: Tensor, bins: TileBins, width: int, height: int) -> Tensor:
    """(n_tiles, P, D) per-tile pixels -> (C, H, W, D) images."""
    ts, d = bins.tile_size, x.shape[-1]
    x = x.reshape(bins.num_cameras, bins.tiles_y, bins.tiles_x, ts, ts, d)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(bins.num_cameras, bins.tiles_y * ts,
                                            bins.tiles_x * ts, d)
    return x[:, :height, :width]
