"""Plane-sweep feature cost volume for multi-frame self-supervised depth.

Follows ManyDepth (Watson et al., "The Temporal Opportunist: Self-Supervised Multi-Frame
Monocular Depth", CVPR 2021, github.com/nianticlabs/manydepth, ``ResnetEncoderMatching``) and
ProDepth (Woo et al., ECCV 2024, which adds log-uniform "SID" bins). For every hypothesised depth
``d_k`` every target pixel is lifted to the fronto-parallel plane ``z = d_k``, moved into each
source camera with the relative pose, projected, and the source feature map is sampled there
bilinearly; the cost of bin ``k`` is the channel mean of ``|warped source - target|``.

Validity (as ManyDepth): a sample is used only if the point lies in front of the source camera
and its projection is at least ``border`` pixels inside the source map, and only outside a
``border``-pixel frame of the target map (zero-padded convolutions make feature borders
unreliable). Costs are averaged over the sources that gave a valid sample, per bin; bins without
any valid sample are filled with the pixel's largest cost so that they never win the argmin.

Differences from ManyDepth's code, all deliberate:

* valid samples are counted from the mask, not from ``diff > 0`` (a perfect match of exactly 0
  is not "missing");
* the source border test is symmetric, ``border <= x <= W - 1 - border`` (ManyDepth's right /
  bottom test is ``x <= W - 2``), and points behind the source camera are invalid;
* the volume is built for the whole batch at once, a few bins at a time, with every bin's
  sampling grid stacked along the grid height so that source features are never copied per bin.

A source whose relative pose is the all-zero matrix is *missing* (first frame of a video, or
ManyDepth's "missing cost volume" augmentation) and is skipped. If every source of a sample is
missing, its volume is all zeros (``raw``, ``cost`` and ``confidence``), which is what ManyDepth
feeds its network in that case.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from geo3d.registry import MODELS
from geo3d.structures.camera import PROJECT_EPS, _normalise, backproject

__all__ = ['depth_bins', 'CostVolumeOutput', 'PlaneSweepCostVolume', 'BINNINGS']

#: ``linear`` (ManyDepth), ``log`` (ProDepth's ``sid``: log-uniform), ``inverse`` (uniform in 1/d).
BINNINGS = ('linear', 'log', 'inverse')

#: Elements of warped features (B * C * bins * h * w) built at once by default (~128 MB float32).
DEFAULT_CHUNK_ELEMENTS = 2 ** 25


def depth_bins(min_depth: float | Tensor, max_depth: float | Tensor, num_bins: int,
               binning: str = 'linear') -> Tensor:
    """Depth hypotheses in increasing order, ``d_0 = min_depth``, ``d_{D-1} = max_depth``.

    With ``t_i = i / (D - 1)``:

    * ``'linear'``: ``d_i = min + (max - min) t_i`` (ManyDepth's default);
    * ``'log'``: ``d_i = exp(log min + log(max / min) t_i)`` (ProDepth's ``'sid'``);
    * ``'inverse'``: ``1 / d_i = 1 / min + (1 / max - 1 / min) t_i`` (ManyDepth's ``'inverse'``).

    Args:
        min_depth, max_depth: floats or 0-dim tensors -> (D,) bins; (B,) tensors -> (B, D).
        num_bins: D >= 2.
        binning: one of :data:`BINNINGS`.

    Returns:
        (D,) or (B, D), in the tensors' dtype/device (float32 for plain floats).
    """
    if binning not in BINNINGS:
        raise ValueError(f'depth_bins: binning must be one of {BINNINGS}, got {binning!r}')
    if not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f'depth_bins: num_bins must be an int >= 2, got {num_bins!r}')
    ref = next((t for t in (min_depth, max_depth) if isinstance(t, Tensor)), None)
    kw = dict(dtype=ref.dtype if ref is not None and ref.is_floating_point() else torch.float32,
              device=ref.device if ref is not None else None)
    lo, hi = torch.as_tensor(min_depth, **kw), torch.as_tensor(max_depth, **kw)
    if lo.ndim > 1 or hi.ndim > 1:
        raise ValueError(f'depth_bins: min_depth / max_depth must be scalars or (B,) tensors, '
                         f'got shapes {tuple(lo.shape)} and {tuple(hi.shape)}')
    lo, hi = torch.broadcast_tensors(lo, hi)
    if not bool(((lo > 0) & (hi > lo)).all()):
        raise ValueError(f'depth_bins: need 0 < min_depth < max_depth, got min_depth={lo.tolist()}'
                         f', max_depth={hi.tolist()}')
    t = torch.linspace(0.0, 1.0, num_bins, **kw)
    lo, hi = lo.unsqueeze(-1), hi.unsqueeze(-1)
    if binning == 'linear':
        bins = lo + (hi - lo) * t
    elif binning == 'log':
        bins = torch.exp(torch.log(lo) + torch.log(hi / lo) * t)
    else:
        bins = 1.0 / (1.0 / lo + (1.0 / hi - 1.0 / lo) * t)
    # exact end points (exp/log and 1/x round-trips are off by an ulp)
    bins = torch.cat([lo, bins[..., 1:-1], hi], -1)
    return bins


class CostVolumeOutput(NamedTuple):
    """Result of :class:`PlaneSweepCostVolume`.

    Attributes:
        cost: (B, D, h, w) mean L1 feature cost; bins without a valid sample hold the pixel's
            largest cost (0 where no bin of the pixel had one).
        raw: (B, D, h, w) the same before filling: 0 where no source gave a valid sample
            (ProDepth feeds this "raw" volume to its auxiliary decoder).
        confidence: (B, 1, h, w) float, 1 where every bin had at least one valid sample.
        bins: (D,) or (B, D) the depth of each bin.
    """

    cost: Tensor
    raw: Tensor
    confidence: Tensor
    bins: Tensor


def _check_inputs(target_feat: Tensor, source_feats: Tensor, poses: Tensor, K: Tensor,
                  inv_K: Tensor) -> None:
    def shape(t: object) -> object:
        return tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__

    if not isinstance(target_feat, Tensor) or target_feat.ndim != 4:
        raise ValueError(f'PlaneSweepCostVolume: target_feat must be (B, C, h, w), '
                         f'got {shape(target_feat)}')
    b, c, h, w = target_feat.shape
    if not isinstance(source_feats, Tensor) or source_feats.ndim != 5 or (
            source_feats.shape[0], *source_feats.shape[2:]) != (b, c, h, w):
        raise ValueError(f'PlaneSweepCostVolume: source_feats must be (B, N, C, h, w) = '
                         f'({b}, N, {c}, {h}, {w}) like target_feat, got {shape(source_feats)}')
    n = source_feats.shape[1]
    if not isinstance(poses, Tensor) or tuple(poses.shape) != (b, n, 4, 4):
        raise ValueError(f'PlaneSweepCostVolume: poses must be (B, N, 4, 4) = ({b}, {n}, 4, 4) '
                         f'target->source transforms, got {shape(poses)}')
    for name, t in (('K', K), ('inv_K', inv_K)):
        if not isinstance(t, Tensor) or tuple(t.shape) != (b, 4, 4):
            raise ValueError(f'PlaneSweepCostVolume: {name} must be ({b}, 4, 4) pixel intrinsics '
                             f'at the feature resolution, got {shape(t)}')


@MODELS.register_module()
class PlaneSweepCostVolume(nn.Module):
    """ManyDepth's plane-sweep L1 feature cost volume with an adaptive depth range.

    Args:
        num_bins: number of depth hypotheses D (ManyDepth 96, ProDepth 128).
        binning: ``'linear'``, ``'log'`` (ProDepth's SID) or ``'inverse'``; see
            :func:`depth_bins`.
        min_depth_bin, max_depth_bin: initial depth range; kept in buffers of the same names
            (saved in checkpoints; evaluation must use the trained range).
        adaptive_range: let :meth:`update_range` move the range (monocular training, unknown
            scale); if False :meth:`update_range` does nothing.
        momentum: EMA weight of the old range in :meth:`update_range` (ManyDepth 0.99).
        min_floor: lower bound of a new minimum in :meth:`update_range` (ManyDepth: the
            network's ``min_depth``, 0.1).
        border: pixels near the source / target feature borders that are invalid (ManyDepth 2).
        align_corners: ``grid_sample`` convention; pixel coordinates are normalised to match it
            (see ``geo3d.structures.camera``); ManyDepth: True.
        chunk_elements: upper bound on ``B * C * bins * h * w`` warped-feature elements built at
            once (memory/speed trade-off only, results do not depend on it).
    """

    def __init__(self, num_bins: int = 96, binning: str = 'linear', min_depth_bin: float = 0.1,
                 max_depth_bin: float = 10.0, adaptive_range: bool = True,
                 momentum: float = 0.99, min_floor: float = 0.1, border: int = 2,
                 align_corners: bool = True,
                 chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> None:
        super().__init__()
        depth_bins(min_depth_bin, max_depth_bin, num_bins, binning)  # validates
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'PlaneSweepCostVolume: momentum must be in [0, 1], got {momentum}')
        if min_floor <= 0:
            raise ValueError(f'PlaneSweepCostVolume: min_floor must be > 0, got {min_floor}')
        if border < 0:
            raise ValueError(f'PlaneSweepCostVolume: border must be >= 0, got {border}')
        if chunk_elements < 1:
            raise ValueError(f'PlaneSweepCostVolume: chunk_elements must be >= 1, '
                             f'got {chunk_elements}')
        self.num_bins = num_bins
        self.binning = binning
        self.adaptive_range = adaptive_range
        self.momentum = float(momentum)
        self.min_floor = float(min_floor)
        self.border = int(border)
        self.align_corners = align_corners
        self.chunk_elements = int(chunk_elements)
        self.register_buffer('min_depth_bin', torch.tensor(float(min_depth_bin)))
        self.register_buffer('max_depth_bin', torch.tensor(float(max_depth_bin)))

    def extra_repr(self) -> str:
        return (f'num_bins={self.num_bins}, binning={self.binning!r}, '
                f'range=[{float(self.min_depth_bin):.4g}, {float(self.max_depth_bin):.4g}], '
                f'adaptive_range={self.adaptive_range}, border={self.border}')

    def bins(self) -> Tensor:
        """(D,) the current depth hypotheses (from the range buffers)."""
        return depth_bins(self.min_depth_bin, self.max_depth_bin, self.num_bins, self.binning)

    @torch.no_grad()
    def update_range(self, teacher_depth: Tensor) -> None:
        """ManyDepth's EMA of the depth range from a (single-frame) teacher's depth.

        ``new_min = max(min_floor, 0.9 * mean_b min(depth_b))``,
        ``new_max = 1.1 * mean_b max(depth_b)``, then
        ``range = momentum * range + (1 - momentum) * new``. No-op unless ``adaptive_range``.

        Args:
            teacher_depth: (B, 1, H, W) depth (any resolution); not differentiated.
        """
        if not isinstance(teacher_depth, Tensor) or teacher_depth.ndim != 4 \
                or teacher_depth.shape[1] != 1:
            shape = tuple(teacher_depth.shape) if isinstance(teacher_depth, Tensor) else \
                type(teacher_depth).__name__
            raise ValueError(f'update_range: teacher_depth must be (B, 1, H, W), got {shape}')
        if not self.adaptive_range:
            return
        flat = teacher_depth.detach().flatten(1).to(self.min_depth_bin.dtype)
        new_min = torch.clamp(flat.amin(1).mean() * 0.9, min=self.min_floor)
        new_max = flat.amax(1).mean() * 1.1
        m = self.momentum
        lo = self.min_depth_bin * m + new_min.to(self.min_depth_bin.device) * (1 - m)
        hi = self.max_depth_bin * m + new_max.to(self.max_depth_bin.device) * (1 - m)
        if not float(lo) < float(hi):  # degenerate teacher (e.g. constant output)
            hi = lo * (1 + 1e-3)
        self.min_depth_bin.copy_(lo)
        self.max_depth_bin.copy_(hi)

    @staticmethod
    def argmin_depth(cost: Tensor, bins: Tensor) -> Tensor:
        """Depth of the lowest-cost bin per pixel (ManyDepth's ``lowest_cost``, as depth).

        Args:
            cost: (B, D, h, w).
            bins: (D,) or (B, D).

        Returns:
            (B, 1, h, w).
        """
        if cost.ndim != 4:
            raise ValueError(f'argmin_depth: cost must be (B, D, h, w), got {tuple(cost.shape)}')
        b, d = cost.shape[:2]
        if bins.shape not in ((d,), (b, d)):
            raise ValueError(f'argmin_depth: bins must be ({d},) or ({b}, {d}), '
                             f'got {tuple(bins.shape)}')
        idx = cost.argmin(1, keepdim=True)  # (B, 1, h, w)
        table = bins.to(cost.device).expand(b, d).reshape(b, d, 1, 1).expand(-1, -1, *idx.shape[2:])
        return table.gather(1, idx)

    def forward(self, target_feat: Tensor, source_feats: Tensor, poses: Tensor, K: Tensor,
                inv_K: Tensor, bins: Tensor | None = None) -> CostVolumeOutput:
        """Build the cost volume.

        Args:
            target_feat: (B, C, h, w) features of the target (current) frame.
            source_feats: (B, N, C, h, w) features of N source (lookup) frames.
            poses: (B, N, 4, 4) target -> source transforms; an all-zero matrix marks a missing
                source.
            K, inv_K: (B, 4, 4) pixel intrinsics at the feature resolution (h, w) and inverse.
            bins: optional (D',) or (B, D') depth hypotheses overriding the range buffers.

        Returns:
            :class:`CostVolumeOutput`.
        """
        _check_inputs(target_feat, source_feats, poses, K, inv_K)
        b, c, h, w = target_feat.shape
        n = source_feats.shape[1]
        if bins is None:
            bins = self.bins()
        elif bins.ndim not in (1, 2) or (bins.ndim == 2 and bins.shape[0] != b):
            raise ValueError(f'PlaneSweepCostVolume: bins must be (D,) or ({b}, D), '
                             f'got {tuple(bins.shape)}')
        dtype, device = target_feat.dtype, target_feat.device
        bins = bins.to(device=device, dtype=dtype)
        num_bins = bins.shape[-1]
        bins_b = bins.expand(b, num_bins)  # (B, D)

        # unit-depth rays (B, 3, hw): X(d) = d * ray, so a plane is a scaled copy of them
        ones = torch.ones(b, 1, h, w, dtype=dtype, device=device)
        rays = backproject(ones, inv_K.to(dtype))[:, :3]
        target_ok = torch.zeros(h, w, dtype=torch.bool, device=device)
        target_ok[self.border:h - self.border, self.border:w - self.border] = True
        missing = poses.flatten(2).eq(0).all(-1)  # (B, N)
        lo, hi_x, hi_y = float(self.border), w - 1.0 - self.border, h - 1.0 - self.border

        chunk = max(1, min(num_bins, self.chunk_elements // max(1, b * c * h * w)))
        projections = []  # per present source: (index, K T[:3, :3] @ rays (B, 3, hw), t (B, 3, 1))
        for src in range(n):
            if bool((~missing[:, src]).any()):
                KT = (K.to(dtype) @ poses[:, src].to(dtype))[:, :3]  # (B, 3, 4)
                projections.append((src, KT[:, :, :3] @ rays, KT[:, :, 3:]))
        cost_chunks, count_chunks = [], []
        for k0 in range(0, num_bins, chunk):
            d = bins_b[:, k0:k0 + chunk]  # (B, c)
            nb = d.shape[1]
            cost_sum = target_feat.new_zeros(b, nb, h, w)
            count = target_feat.new_zeros(b, nb, h, w)
            for src, P, t in projections:
                cam = P.unsqueeze(1) * d.reshape(b, nb, 1, 1) + t.unsqueeze(1)  # (B, c, 3, hw)
                z = cam[:, :, 2]
                pix = cam[:, :, :2] / (z.unsqueeze(2) + PROJECT_EPS)  # (B, c, 2, hw)
                grid = _normalise(pix.reshape(b * nb, 2, h * w), h, w, self.align_corners)
                grid = grid.reshape(b, nb * h, w, 2)  # the c bins stacked along the grid height
                warped = F.grid_sample(source_feats[:, src], grid, mode='bilinear',
                                       padding_mode='zeros', align_corners=self.align_corners)
                warped = warped.reshape(b, c, nb, h, w)
                if warped.requires_grad:
                    diff = (warped - target_feat.unsqueeze(2)).abs().mean(1)
                else:  # no autograd graph: reuse the buffer (a third of the peak memory)
                    diff = warped.sub_(target_feat.unsqueeze(2)).abs_().mean(1)
                with torch.no_grad():
                    x, y = pix[:, :, 0], pix[:, :, 1]  # (B, c, hw)
                    ok = ((z > PROJECT_EPS) & (x >= lo) & (x <= hi_x) & (y >= lo)
                          & (y <= hi_y)).reshape(b, nb, h, w)
                    ok = ok & target_ok & ~missing[:, src].reshape(b, 1, 1, 1)
                    okf = ok.to(dtype)
                cost_sum = cost_sum + diff * okf
                count = count + okf
            cost_chunks.append(cost_sum)
            count_chunks.append(count)
        cost_sum, count = torch.cat(cost_chunks, 1), torch.cat(count_chunks, 1)
        valid = count > 0
        raw = torch.where(valid, cost_sum / count.clamp(min=1), torch.zeros_like(cost_sum))
        fill = raw.amax(1, keepdim=True)  # costs are >= 0, so the max over valid bins
        cost = torch.where(valid, raw, fill.expand_as(raw))
        confidence = valid.all(1, keepdim=True).to(dtype)
        return CostVolumeOutput(cost=cost, raw=raw, confidence=confidence, bins=bins)
