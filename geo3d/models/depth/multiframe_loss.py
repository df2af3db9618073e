"""The masked reprojection + consistency loss of multi-frame self-supervised depth networks.

ManyDepth (Watson et al., CVPR 2021, github.com/nianticlabs/manydepth, ``trainer.py::
compute_losses`` with ``is_multi=True``) and ProDepth (Woo et al., ECCV 2024,
github.com/Sungmin-Woo/ProDepth) train their multi-frame network with, per output scale ``s``
(disparity upsampled to the input size, Monodepth2's "full-res multi-scale")::

    pe_s     = min over sources of photometric_error(warp(I_src, D_s, T.detach()), I_0)
    reproj_s = sum(pe_s * M) / (sum(M) + 1e-7)             # M in [0, 1], no auto-masking
    consis_s = mean(|x_s - x_teacher.detach()| * (1 - M))   # where M is low, copy the teacher
    loss     = mean_s(reproj_s + w_c * consis_s + w_sm * smooth_s / 2**s)

ManyDepth: ``M = confidence * trusted * (1 - augmented)``, ``x`` = depth at each scale,
``w_c = 1``. ProDepth: ``M = W * [W > 0.4] * (1 - augmented)``, ``x`` = the *scaled disparity*
of scale 0 (used at every scale), ``w_c = 0.1``. The same module with ``scales=(0,)``, no
smoothness and no consistency is ProDepth's auxiliary cost-volume loss.

The warps, photometric error and smoothness are geo3d's (``structures.camera.warp``,
``photometric.photometric_error`` / ``min_reprojection``, ``smoothness.edge_aware_smoothness``),
the same as :class:`~geo3d.models.depth.MonocularDepthLoss`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS
from geo3d.structures.camera import disp_to_depth, warp

from .losses import MonocularDepthLoss, _get
from .photometric import min_reprojection, photometric_error
from .smoothness import edge_aware_smoothness

__all__ = ['MultiFrameDepthLoss', 'masked_mean', 'reprojection_error', 'MASK_EPS']

#: ManyDepth / ProDepth normalise the masked reprojection loss by ``sum(mask) + 1e-7``.
MASK_EPS = 1e-7


def masked_mean(x: Tensor, mask: Tensor, eps: float = MASK_EPS) -> Tensor:
    """``sum(x * mask) / (sum(mask) + eps)``; ``mask`` broadcasts to ``x`` (e.g. (B, 1, 1, 1)).

    The denominator counts the mask over ``x``'s full shape, so a per-sample mask (B, 1, 1, 1)
    weighs every pixel of its sample.
    """
    m = mask.to(x.dtype).expand_as(x)
    return (x * m).sum() / (m.sum() + eps)


def reprojection_error(depth: Tensor, target: Tensor, sources: Mapping, poses: Mapping,
                       K: Tensor, inv_K: Tensor, ssim_weight: float = 0.85,
                       align_corners: bool = True, padding_mode: str = 'border') -> Tensor:
    """Per-pixel minimum over sources of the photometric error of the warped sources.

    Args:
        depth: (B, 1, H, W) target depth.
        target: (B, 3, H, W) target image.
        sources: ``{f: (B, 3, H, W)}`` source images.
        poses: ``{f: (B, 4, 4)}`` target -> source transforms (same keys as ``sources``).
        K, inv_K: (B, 4, 4) pixel intrinsics at (H, W).

    Returns:
        (B, 1, H, W).
    """
    errors = []
    for f, src in sources.items():
        warped, _ = warp(src, depth, poses[f], K, inv_K, align_corners=align_corners,
                         padding_mode=padding_mode)
        errors.append(photometric_error(warped, target, ssim_weight))
    return min_reprojection(torch.cat(errors, 1), None).loss_map


@MODELS.register_module()
class MultiFrameDepthLoss(nn.Module):
    """Masked min-reprojection + teacher consistency + smoothness (see the module doc).

    Args:
        scales: output scales; scale ``s`` disparity is (B, 1, H / 2**s, W / 2**s).
        frame_ids: target 0 and the sources warped into it (``'s'`` allowed).
        min_depth, max_depth: range of ``disp_to_depth``.
        disparity_smoothness: smoothness weight at scale 0 (divided by ``2**s``); 0 disables.
        ssim_weight: SSIM share of the photometric error.
        consistency_weight: weight of the consistency term (ManyDepth 1, ProDepth 0.1); 0
            disables it (no teacher needed then).
        consistency_on: ``'depth'`` (ManyDepth) or ``'disparity'`` (ProDepth's fixed code: the
            scaled disparity, the first output of ``disp_to_depth``).
        consistency_scales: ``'each'`` (ManyDepth: scale ``s`` of both nets at every scale) or
            ``'first'`` (ProDepth: scale 0 only, the same term at every scale).
        align_corners, padding_mode: sampling of the warp (Monodepth2: True, ``'border'``).

    Call ``loss(disps, colors, poses, K, inv_K, mask, teacher_disps)`` with
        disps: ``{('disp', s): (B, 1, h_s, w_s)}`` sigmoid disparities of the trained network;
        colors: ``{('color', f, 0): (B, 3, H, W)}`` for every frame id (optional
            ``('color', 0, s)`` for smoothness at scale s);
        poses: ``{('T', f): (B, 4, 4)}`` target -> source (detach them to keep the pose net out,
            as ManyDepth);
        K, inv_K: (B, 4, 4) pixel intrinsics at (H, W);
        mask: the reprojection mask M in [0, 1], (B, 1, H, W) or (B, 1, 1, 1);
        teacher_disps: ``{('disp', s)}`` sigmoid disparities of the teacher (detached here),
            needed when ``consistency_weight > 0``.
    Returns ``{'loss', 'reprojection_s{s}', 'smoothness_s{s}', 'consistency_s{s}'}``; only
    ``'loss'`` has gradient and contains the word "loss".
    """

    def __init__(self, scales: Sequence[int] = (0, 1, 2, 3),
                 frame_ids: Sequence[int | str] = (0, -1, 1), min_depth: float = 0.1,
                 max_depth: float = 100.0, disparity_smoothness: float = 1e-3,
                 ssim_weight: float = 0.85, consistency_weight: float = 1.0,
                 consistency_on: Literal['depth', 'disparity'] = 'depth',
                 consistency_scales: Literal['each', 'first'] = 'each',
                 align_corners: bool = True, padding_mode: str = 'border') -> None:
        super().__init__()
        if not scales or any(int(s) < 0 for s in scales):
            raise ValueError(f'MultiFrameDepthLoss: scales must be a non-empty list of levels '
                             f'>= 0, got {scales}')
        if 0 not in frame_ids or len(frame_ids) < 2 or len(set(frame_ids)) != len(frame_ids):
            raise ValueError(f'MultiFrameDepthLoss: frame_ids must hold the target 0 and at least '
                             f'one source, no duplicates, got {frame_ids}')
        if not 0 < min_depth < max_depth:
            raise ValueError(f'MultiFrameDepthLoss: need 0 < min_depth < max_depth, got '
                             f'{min_depth}, {max_depth}')
        if consistency_on not in ('depth', 'disparity'):
            raise ValueError(f"MultiFrameDepthLoss: consistency_on must be 'depth' or "
                             f"'disparity', got {consistency_on!r}")
        if consistency_scales not in ('each', 'first'):
            raise ValueError(f"MultiFrameDepthLoss: consistency_scales must be 'each' or "
                             f"'first', got {consistency_scales!r}")
        if consistency_weight < 0 or disparity_smoothness < 0:
            raise ValueError(f'MultiFrameDepthLoss: weights must be >= 0, got consistency '
                             f'{consistency_weight}, smoothness {disparity_smoothness}')
        self.scales = [int(s) for s in scales]
        self.frame_ids = list(frame_ids)
        self.source_ids = [f for f in self.frame_ids if f != 0]
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.disparity_smoothness = float(disparity_smoothness)
        self.ssim_weight = float(ssim_weight)
        self.consistency_weight = float(consistency_weight)
        self.consistency_on = consistency_on
        self.consistency_scales = consistency_scales
        self.align_corners = align_corners
        self.padding_mode = padding_mode

    def _full(self, disp: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(scaled disparity, depth) at the input size (bilinear upsampling of the sigmoid)."""
        if disp.shape[-2:] != size:
            disp = F.interpolate(disp, size, mode='bilinear', align_corners=False)
        return disp_to_depth(disp, self.min_depth, self.max_depth)

    def forward(self, disps: Mapping, colors: Mapping, poses: Mapping, K: Tensor, inv_K: Tensor,
                mask: Tensor, teacher_disps: Mapping | None = None) -> dict[str, Tensor]:
        target = _get(colors, ('color', 0, 0), 'colors', 'the target image')
        if target.ndim != 4:
            raise ValueError(f"MultiFrameDepthLoss: colors[('color', 0, 0)] must be "
                             f'(B, 3, H, W), got {tuple(target.shape)}')
        b, _, h, w = target.shape
        K, inv_K = (m.expand(b, 4, 4) if m.ndim == 2 else m for m in (K, inv_K))
        if not isinstance(mask, Tensor) or mask.ndim != 4 or mask.shape[:2] != (b, 1) \
                or mask.shape[-2:] not in ((1, 1), (h, w)):
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f'MultiFrameDepthLoss: mask must be ({b}, 1, {h}, {w}) or '
                             f'({b}, 1, 1, 1), got {shape}')
        mask = mask.detach().to(target.dtype)
        sources = {f: _get(colors, ('color', f, 0), 'colors', f'source frame {f!r}')
                   for f in self.source_ids}
        T = {f: _get(poses, ('T', f), 'poses', f'target -> source {f!r} transform')
             for f in self.source_ids}
        use_teacher = self.consistency_weight > 0
        if use_teacher and teacher_disps is None:
            raise ValueError('MultiFrameDepthLoss: teacher_disps are needed for the consistency '
                             'term (consistency_weight > 0)')
        complement = 1.0 - mask

        def consistency(s: int) -> Tensor:
            ours = self._full(_get(disps, ('disp', s), 'disps', 'consistency'), (h, w))
            theirs = self._full(_get(teacher_disps, ('disp', s), 'teacher_disps',
                                     f'the consistency target at scale {s}').detach(), (h, w))
            i = 1 if self.consistency_on == 'depth' else 0
            return ((ours[i] - theirs[i]).abs() * complement).mean()

        losses: dict[str, Tensor] = {}
        total = target.new_zeros(())
        first = consistency(0) if use_teacher and self.consistency_scales == 'first' else None
        for s in self.scales:
            disp = _get(disps, ('disp', s), 'disps', f'scale {s} is in scales={self.scales}')
            if disp.ndim != 4 or disp.shape[:2] != (b, 1):
                raise ValueError(f"MultiFrameDepthLoss: disps[('disp', {s})] must be "
                                 f'({b}, 1, h, w), got {tuple(disp.shape)}')
            _, depth = self._full(disp, (h, w))
            pe = reprojection_error(depth, target, sources, T, K, inv_K, self.ssim_weight,
                                    self.align_corners, self.padding_mode)
            reprojection = masked_mean(pe, mask)
            term = reprojection
            losses[f'reprojection_s{s}'] = reprojection.detach()
            if use_teacher:
                cons = first if first is not None else consistency(s)
                term = term + self.consistency_weight * cons
                losses[f'consistency_s{s}'] = cons.detach()
            if self.disparity_smoothness > 0:
                color = MonocularDepthLoss._color_at(colors, target, s, disp)
                smooth = edge_aware_smoothness(disp, color)
                term = term + self.disparity_smoothness * smooth / 2 ** s
                losses[f'smoothness_s{s}'] = smooth.detach()
            total = total + term
        losses['loss'] = total / len(self.scales)
        return losses
