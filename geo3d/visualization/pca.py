"""Colour per-point features by their first three principal components (feature inspection)."""
from __future__ import annotations

import torch
from torch import Tensor


def pca_rgb(feat: Tensor, num_samples: int = 100000, k_mad: float = 3.0,
            generator: torch.Generator | None = None) -> Tensor:
    """Map features to RGB in [0, 1] with a 3-component PCA.

    The principal directions are those of a random subsample (``num_samples`` rows), computed
    by SVD of the centred subsample; each direction's sign is fixed so that its largest-magnitude
    loading is positive (deterministic colours). Each projected component is clipped to
    ``median +- k_mad * MAD`` (median absolute deviation, from the subsample) so a few outliers
    do not squash the colour range, then scaled to [0, 1] over that interval. Components with no
    spread (fewer than 3 feature dimensions or constant features) are 0.5.

    Args:
        feat: (N, C) features.
        num_samples: rows used to fit the PCA and the clipping ranges.
        k_mad: half-width of the clipping interval in MADs.
        generator: random generator of the subsample.

    Returns:
        (N, 3) float32 colours in [0, 1].
    """
    if feat.ndim != 2:
        raise ValueError(f'feat must be (N, C), got {tuple(feat.shape)}')
    x = feat.detach().float().cpu()
    n, c = x.shape
    out = torch.full((n, 3), 0.5)
    if n == 0:
        return out
    sub = x if n <= num_samples else x[torch.randperm(n, generator=generator)[:num_samples]]
    mean = sub.mean(0)
    _, svals, vh = torch.linalg.svd(sub - mean, full_matrices=False)      # vh: (r, C)
    r = min(3, vh.shape[0])
    dirs = vh[:r]
    sign = torch.sign(dirs.gather(1, dirs.abs().argmax(1, keepdim=True)))
    dirs = dirs * torch.where(sign == 0, torch.ones_like(sign), sign)
    proj, proj_sub = (x - mean) @ dirs.T, (sub - mean) @ dirs.T          # (N, r), (n', r)
    for j in range(r):
        if svals[j] <= 1e-8 * max(float(svals[0]), 1e-30):
            continue
        med = proj_sub[:, j].median()
        mad = (proj_sub[:, j] - med).abs().median()
        if mad <= 0:
            mad = proj_sub[:, j].std()
        if not mad > 0:
            continue
        lo, hi = med - k_mad * mad, med + k_mad * mad
        out[:, j] = ((proj[:, j].clamp(lo, hi) - lo) / (hi - lo))
    return out
