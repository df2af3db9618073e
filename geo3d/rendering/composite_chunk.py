"""One compositing step of the PyTorch rasterizer as an autograd Function with its own backward.

A step blends ``k`` depth-sorted Gaussians into the ``P`` pixels of each of ``A`` tiles. Written
with plain autograd it keeps about ten (A, k, P) tensors alive for the backward pass and its
``cumprod`` backward alone took a third of the run time; here the forward saves three
(A, k, P) tensors (``exp(-sigma)``, the final ``alpha`` and the exclusive transmittance
product) and the backward applies the closed-form gradient of front-to-back compositing, the
same equations as gsplat's CUDA backward
(``RasterizeToPixels3DGSBwd.cu``): with ``T_i = T_0 prod_{m<i} (1 - alpha_m)``,
``w_i = alpha_i T_i``, ``out = sum_i w_i f_i``, ``T_out = T_0 prod_i (1 - alpha_i)``:

    dL/df_i     = sum_p w_i G
    dL/dalpha_i = T_i (G . f_i) - (sum_{j>i} w_j (G . f_j) + T_out gT) / (1 - alpha_i)
    dL/dT_0     = sum_i (w_i / T_0) (G . f_i) + (T_out / T_0) gT

for ``G = dL/dout`` and ``gT = dL/dT_out``; then through ``alpha = min(0.999, o exp(-sigma))``
(zero where clamped or below 1/255, or past the pixel's stop) to ``o`` and to the coefficients
of ``-sigma``. Tested against plain autograd and with gradcheck.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .projection import ALPHA_THRESHOLD

__all__ = ['ALPHA_MAX', 'TRANSMITTANCE_MIN', 'composite_chunk']

ALPHA_MAX = 0.999  # gsplat's per-Gaussian alpha clamp (1.5.3: min(0.999, ...))
TRANSMITTANCE_MIN = 1e-4  # a pixel stops before the Gaussian that would take T to <= this


class _CompositeChunk(torch.autograd.Function):
    """(neg_coef, opac, live, features) -> (contrib, t_out, stopped); see the module doc."""

    @staticmethod
    def forward(ctx: Any, neg_coef: Tensor, opac: Tensor, live: Tensor, features: Tensor,
                phi_t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        gauss = torch.exp(neg_coef @ phi_t)  # (A, k, P) exp(-sigma)
        alpha = (opac[..., None] * gauss).clamp(max=ALPHA_MAX)
        alpha = torch.where(alpha >= ALPHA_THRESHOLD, alpha, 0.0)
        one_minus = 1.0 - alpha
        incl = torch.cumprod(one_minus, 1)  # prod_{m<=i} (1 - alpha_m)
        keep = live[:, None] * incl > TRANSMITTANCE_MIN  # a prefix along k
        excl = incl.div_(one_minus)  # prod_{m<i} (1 - alpha_m)
        alpha = torch.where(keep, alpha, 0.0)  # past the stop: nothing
        wn = alpha * excl  # weights for T_0 = 1
        contrib = (wn * live[:, None]).transpose(1, 2) @ features  # (A, P, D)
        t_out = live * (1.0 - wn.sum(1))
        stopped = ~keep[:, -1]
        ctx.save_for_backward(gauss, alpha, excl, opac, live, features, phi_t)
        ctx.mark_non_differentiable(stopped)
        return contrib, t_out, stopped

    @staticmethod
    def backward(ctx: Any, g_contrib: Tensor, g_t: Tensor, _g_stopped: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        gauss, alpha, excl, opac, live, features, phi_t = ctx.saved_tensors
        wn = alpha * excl  # (A, k, P) weights for T_0 = 1
        gf = features @ g_contrib.transpose(1, 2)  # (A, k, P): G . f_i per pixel
        wn_gf = wn * gf
        p_out = 1.0 - wn.sum(1)  # (A, P) prod_i (1 - alpha_i)
        g_live = wn_gf.sum(1) + p_out * g_t
        s = wn_gf * live[:, None]  # w_j (G . f_j)
        after = s.sum(1, keepdim=True) - torch.cumsum(s, 1)  # sum_{j>i} w_j (G . f_j)
        g_alpha = excl * live[:, None] * gf - (after + (live * p_out * g_t)[:, None]) / (
            1.0 - alpha)
        # alpha = min(0.999, o * gauss) where kept and >= 1/255, else a constant
        g_o_pix = torch.where((alpha > 0) & (alpha < ALPHA_MAX), g_alpha, 0.0) * gauss
        g_features = (wn * live[:, None]) @ g_contrib  # (A, k, D)
        g_opac = g_o_pix.sum(-1)
        g_neg_coef = (g_o_pix * opac[..., None]) @ phi_t.T  # d(o gauss)/d(-sigma) = o gauss
        return g_neg_coef, g_opac, g_live, g_features, None


def composite_chunk(neg_coef: Tensor, opac: Tensor, live: Tensor, features: Tensor,
                    phi_t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Blend ``k`` Gaussians (front to back) into the pixels of ``A`` tiles.

    Args:
        neg_coef: (A, k, 6) coefficients of ``-sigma`` as a polynomial in tile-local pixel
            coordinates (``-sigma = neg_coef @ phi_t``).
        opac: (A, k) opacities (0 for padding slots).
        live: (A, P) transmittance before the step, 0 for pixels that already stopped.
        features: (A, k, D) per-Gaussian features (colour and depth).
        phi_t: (6, P) monomials ``[x^2, xy, y^2, x, y, 1]`` of the tile's pixel centres.

    Returns:
        ``contrib`` (A, P, D) ``sum_i alpha_i T_i f_i``, ``t_out`` (A, P) transmittance after
        the step (0 stays 0), ``stopped`` (A, P) bool: the pixel's transmittance reached the
        1e-4 stop in or before this step (not differentiable).
    """
    return _CompositeChunk.apply(neg_coef, opac, live, features, phi_t)
