"""Probabilistic Cost Volume Modulation (PCVM) of ProDepth.

ProDepth (Woo, Lee et al., "ProDepth: Boosting Self-Supervised Multi-Frame Monocular Depth with
Probabilistic Fusion", ECCV 2024, github.com/Sungmin-Woo/ProDepth) repairs the multi-frame cost
volume where the static-scene assumption breaks (moving objects): the matching cost is turned
into a distribution over depth bins, the frozen single-frame teacher's depth and uncertainty into
a Gaussian over the same bins, the two are fused by a *weighted geometric mean* whose exponent is
the pixel's probability of being static, and the fused distribution is mapped back to a cost
that replaces the original volume at the network input.

Here every distribution is a proper one (non-negative, **sums to 1 over the bins**), and all
products are computed in log space. ProDepth's released code min-max normalises each
distribution to [0, 1] instead; its fusion and mapping are available as ``mapping='linear'``.

Why ``mapping='log'`` is the default: with it :func:`distribution_to_cost` is the exact inverse of
:func:`multi_frame_distribution`, and the fusion is linear in ``-log p``::

    -log p_fused = W (-log p_mf) + (1 - W) (-log p_sf) + const
                 = W * normalised matching cost / T + (1 - W) * (d - D_mono)^2 / (2 sigma^2) + const

so the modulated cost is, per pixel, a blend of the matching cost and the teacher's Gaussian
negative log-likelihood, rescaled into the pixel's original cost range. A static pixel (W = 1, or
gated) keeps its cost volume unchanged and a dynamic one (W = 0) gets the teacher's parabola.
ProDepth's linear map of the probabilities, ``(max p - p) / (max p - min p)``, instead
exponentially compresses every cost away from the minimum towards the maximum, so even static
pixels feed the network a different volume than the one it would have without PCVM.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['static_probability', 'multi_frame_distribution', 'single_frame_distribution',
           'fuse_distributions', 'distribution_to_cost', 'ProbabilisticCostVolumeModulation',
           'MAPPINGS']

MAPPINGS = ('log', 'linear')
#: smallest standard deviation of the teacher's Gaussian (in depth units).
MIN_SIGMA = 1e-6


def _shape(t: object) -> object:
    return tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__


def _check_volume(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor) or t.ndim != 4 or t.shape[1] < 1:
        raise ValueError(f'{name} must be (B, D, h, w), got {_shape(t)}')


def _check_map(fn: str, name: str, t: Tensor, like: Tensor) -> None:
    want = (like.shape[0], 1, *like.shape[2:])
    if not isinstance(t, Tensor) or tuple(t.shape) != want:
        raise ValueError(f'{fn}: {name} must be (B, 1, h, w) = {want}, got {_shape(t)}')


def _safe_log(p: Tensor) -> Tensor:
    """log p with 0 -> log(tiny), so that ``0 * log 0`` is 0 and not NaN."""
    return torch.log(p.clamp(min=torch.finfo(p.dtype).tiny))


def _minmax(x: Tensor) -> Tensor:
    """Per-pixel ``(x - min) / (max - min)`` over dim 1; 0 where the range is 0 (no epsilon)."""
    lo, hi = x.amin(1, keepdim=True), x.amax(1, keepdim=True)
    rng = hi - lo
    return (x - lo) / torch.where(rng > 0, rng, torch.ones_like(rng))


def static_probability(depth_a: Tensor, depth_b: Tensor, disp_a: Tensor, disp_b: Tensor,
                       alpha: float = 2.0 / 3.0) -> Tensor:
    """ProDepth's probability that a pixel is static, from two depth estimates that agree there.

    ``W = exp(-alpha |D_a - D_b|) * exp(-alpha |s_a - s_b|)`` in (0, 1], where D are depths and
    s the matching scaled disparities (``disp_to_depth``'s outputs). ProDepth compares the
    auxiliary cost-volume decoder (a) with the frozen single-frame teacher (b), alpha = 2/3, and
    gates at W > 0.4. 1 = static, towards 0 = dynamic.

    Args:
        depth_a, depth_b, disp_a, disp_b: (B, 1, H, W) (any common shape).
        alpha: decay rate > 0.

    Returns:
        (B, 1, H, W).
    """
    ref = depth_a
    for name, t in (('depth_a', depth_a), ('depth_b', depth_b), ('disp_a', disp_a),
                    ('disp_b', disp_b)):
        if not isinstance(t, Tensor) or t.shape != ref.shape:
            raise ValueError(f'static_probability: {name} must be a tensor of the shape of '
                             f'depth_a {_shape(ref)}, got {_shape(t)}')
    if alpha <= 0:
        raise ValueError(f'static_probability: alpha must be > 0, got {alpha}')
    return torch.exp(-alpha * ((depth_a - depth_b).abs() + (disp_a - disp_b).abs()))


def multi_frame_distribution(cost: Tensor, temperature: float = 1.0) -> Tensor:
    """Matching cost -> distribution over bins: ``softmax(-minmax(cost) / temperature)``.

    The cost is min-max normalised per pixel over the bins first (ProDepth), so the sharpness
    does not depend on the feature scale. A pixel whose cost is constant gets the uniform
    distribution.

    Args:
        cost: (B, D, h, w).
        temperature: > 0.

    Returns:
        (B, D, h, w), sums to 1 over D.
    """
    _check_volume('multi_frame_distribution: cost', cost)
    if temperature <= 0:
        raise ValueError(f'multi_frame_distribution: temperature must be > 0, got {temperature}')
    return torch.softmax(-_minmax(cost) / temperature, 1)


def single_frame_distribution(depth: Tensor, sigma: Tensor, bins: Tensor) -> Tensor:
    """The teacher's Gaussian over the bin centres: ``p_i ~ exp(-(d_i - depth)^2 / (2 sigma^2))``.

    Normalised over the bins (a discrete Gaussian, sums to 1). Computed as the softmax of
    ``-(z_i^2 - min_j z_j^2) / 2`` with ``z = |d - depth| / sigma``, so the nearest bin always
    has logit 0: when every bin is many sigmas away the result degrades to a one-hot at the
    nearest bin instead of 0/0.

    Args:
        depth: (B, 1, h, w) teacher depth (same units as the bins).
        sigma: (B, 1, h, w) standard deviation, clamped to >= 1e-6.
        bins: (D,) or (B, D) depth of each bin.

    Returns:
        (B, D, h, w), sums to 1 over D.
    """
    if not isinstance(depth, Tensor) or depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f'single_frame_distribution: depth must be (B, 1, h, w), '
                         f'got {_shape(depth)}')
    _check_map('single_frame_distribution', 'sigma', sigma, depth)
    b = depth.shape[0]
    if not isinstance(bins, Tensor) or bins.ndim not in (1, 2) or (
            bins.ndim == 2 and bins.shape[0] != b) or bins.shape[-1] < 1:
        raise ValueError(f'single_frame_distribution: bins must be (D,) or ({b}, D), '
                         f'got {_shape(bins)}')
    d = bins.to(depth).expand(b, bins.shape[-1]).reshape(b, -1, 1, 1)
    s = sigma.clamp(min=MIN_SIGMA)
    dist = (d - depth).abs()  # (B, D, h, w)
    dist_min = dist.amin(1, keepdim=True)
    nearest = dist == dist_min
    # z^2 - z_min^2 = ((dist - dist_min) / s) * ((dist + dist_min) / s): no overflow of z^2
    # itself, 0 at the nearest bin, +inf (not NaN) for bins out of float range
    far = torch.where(nearest, torch.zeros_like(dist), (dist + dist_min) / s)
    logits = torch.where(nearest, torch.zeros_like(dist), -0.5 * ((dist - dist_min) / s) * far)
    return torch.softmax(logits, 1)


def fuse_distributions(p_mf: Tensor, p_sf: Tensor, W: Tensor,
                       gate: float | None = 0.4) -> Tensor:
    """Weighted geometric mean ``p_mf^W * p_sf^(1 - W)``, renormalised over the bins.

    Computed in log space (``softmax(W log p_mf + (1 - W) log p_sf)``; zeros are clamped to the
    smallest positive float). With ``gate``, pixels with ``W > gate`` keep ``p_mf`` unchanged
    (ProDepth's hard gate ``B = [W > 0.4]``); ``gate=None`` disables it.

    Args:
        p_mf, p_sf: (B, D, h, w) distributions over the bins.
        W: (B, 1, h, w) static probability in [0, 1].
        gate: threshold in [0, 1] or None.

    Returns:
        (B, D, h, w), sums to 1 over D.
    """
    _check_volume('fuse_distributions: p_mf', p_mf)
    if not isinstance(p_sf, Tensor) or p_sf.shape != p_mf.shape:
        raise ValueError(f'fuse_distributions: p_sf must have the shape of p_mf '
                         f'{tuple(p_mf.shape)}, got {_shape(p_sf)}')
    _check_map('fuse_distributions', 'W', W, p_mf)
    if gate is not None and not 0.0 <= gate <= 1.0:
        raise ValueError(f'fuse_distributions: gate must be in [0, 1] or None, got {gate}')
    fused = torch.softmax(W * _safe_log(p_mf) + (1.0 - W) * _safe_log(p_sf), 1)
    if gate is not None:
        fused = torch.where(W > gate, p_mf, fused)
    return fused


def distribution_to_cost(p: Tensor, cost_min: Tensor, cost_max: Tensor,
                         mapping: str = 'log') -> Tensor:
    """Map a distribution over bins back into the pixel's cost range ``[cost_min, cost_max]``.

    * ``'log'``: ``-log p``, min-max normalised per pixel, rescaled. The exact inverse of
      :func:`multi_frame_distribution` (any temperature): feeding its output back with the
      original per-pixel min / max returns the original cost.
    * ``'linear'``: ProDepth's released code, ``(max p - p) / (max p - min p)``, rescaled.

    A pixel whose distribution is flat gets ``cost_min`` in every bin.

    Args:
        p: (B, D, h, w) distribution over the bins.
        cost_min, cost_max: (B, 1, h, w) per-pixel range of the original cost.
        mapping: ``'log'`` or ``'linear'`` (see the module docstring).

    Returns:
        (B, D, h, w).
    """
    _check_volume('distribution_to_cost: p', p)
    _check_map('distribution_to_cost', 'cost_min', cost_min, p)
    _check_map('distribution_to_cost', 'cost_max', cost_max, p)
    if mapping == 'log':
        unit = _minmax(-_safe_log(p))
    elif mapping == 'linear':
        unit = _minmax(-p)
    else:
        raise ValueError(f'distribution_to_cost: mapping must be one of {MAPPINGS}, '
                         f'got {mapping!r}')
    return cost_min + unit * (cost_max - cost_min)


@MODELS.register_module()
class ProbabilisticCostVolumeModulation(nn.Module):
    """ProDepth's PCVM: fuse the matching cost with the single-frame teacher where dynamic.

    No learnable parameters. Every input is detached, as in ProDepth (the teacher and the
    static probability are not trained through the modulated volume).

    Args:
        var_scale: the teacher's std is ``mono_sigma * var_scale`` (ProDepth's
            ``--mono_var_scale``, 20).
        gate: pixels with ``W > gate`` keep the multi-frame distribution (ProDepth 0.4);
            None disables the gate.
        mapping: ``'log'`` (default, exact identity for static pixels) or ``'linear'``
            (ProDepth's code); see :func:`distribution_to_cost`.
        temperature: of :func:`multi_frame_distribution`.
    """

    def __init__(self, var_scale: float = 20.0, gate: float | None = 0.4, mapping: str = 'log',
                 temperature: float = 1.0) -> None:
        super().__init__()
        if var_scale <= 0:
            raise ValueError(f'ProbabilisticCostVolumeModulation: var_scale must be > 0, '
                             f'got {var_scale}')
        if gate is not None and not 0.0 <= gate <= 1.0:
            raise ValueError(f'ProbabilisticCostVolumeModulation: gate must be in [0, 1] or '
                             f'None, got {gate}')
        if mapping not in MAPPINGS:
            raise ValueError(f'ProbabilisticCostVolumeModulation: mapping must be one of '
                             f'{MAPPINGS}, got {mapping!r}')
        if temperature <= 0:
            raise ValueError(f'ProbabilisticCostVolumeModulation: temperature must be > 0, '
                             f'got {temperature}')
        self.var_scale = float(var_scale)
        self.gate = gate
        self.mapping = mapping
        self.temperature = float(temperature)

    def extra_repr(self) -> str:
        return (f'var_scale={self.var_scale}, gate={self.gate}, mapping={self.mapping!r}, '
                f'temperature={self.temperature}')

    def distributions(self, cost: Tensor, mono_depth: Tensor, mono_sigma: Tensor, W: Tensor,
                      bins: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(p_mf, p_sf, p_fused), each (B, D, h, w) summing to 1; arguments as :meth:`forward`."""
        _check_volume('ProbabilisticCostVolumeModulation: cost', cost)
        for name, t in (('mono_depth', mono_depth), ('mono_sigma', mono_sigma), ('W', W)):
            _check_map('ProbabilisticCostVolumeModulation', name, t, cost)
        b, d = cost.shape[:2]
        if not isinstance(bins, Tensor) or tuple(bins.shape) not in ((d,), (b, d)):
            raise ValueError(f'ProbabilisticCostVolumeModulation: bins must be ({d},) or '
                             f'({b}, {d}) to match cost, got {_shape(bins)}')
        cost, mono_depth, mono_sigma, W = (t.detach() for t in (cost, mono_depth, mono_sigma, W))
        p_mf = multi_frame_distribution(cost, self.temperature)
        p_sf = single_frame_distribution(mono_depth, mono_sigma * self.var_scale,
                                         bins.detach())
        return p_mf, p_sf, fuse_distributions(p_mf, p_sf, W, self.gate)

    def forward(self, cost: Tensor, mono_depth: Tensor, mono_sigma: Tensor, W: Tensor,
                bins: Tensor) -> Tensor:
        """Modulated cost volume.

        Args:
            cost: (B, D, h, w) cost volume (e.g. ``PlaneSweepCostVolume(...).cost``).
            mono_depth: (B, 1, h, w) single-frame teacher depth at the volume's resolution, in
                the units of ``bins``.
            mono_sigma: (B, 1, h, w) the teacher's uncertainty head output in (0, 1) (sigmoid);
                std = ``mono_sigma * var_scale``.
            W: (B, 1, h, w) static probability (:func:`static_probability`).
            bins: (D,) or (B, D) depth of each bin.

        Returns:
            (B, D, h, w) cost, per pixel within the original ``[min, max]`` of ``cost``.
        """
        _, _, fused = self.distributions(cost, mono_depth, mono_sigma, W, bins)
        cost = cost.detach()
        return distribution_to_cost(fused, cost.amin(1, keepdim=True), cost.amax(1, keepdim=True),
                                    self.mapping)

