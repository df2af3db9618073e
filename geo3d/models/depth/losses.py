"""The Monodepth2 self-supervised loss, composed from geo3d's camera and photometric parts.

Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(github.com/nianticlabs/monodepth2, ``trainer.py::compute_losses``): for every output scale the
disparity is upsampled to the input resolution, turned into depth, every source frame is warped
into the target view with the relative pose, and the per-pixel minimum photometric error (with
auto-masking) is averaged over all pixels; an edge-aware smoothness term on the scale's own
disparity and the colour image at that scale is added with weight ``1e-3 / 2**s``; the total is
the mean over scales.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS
from geo3d.structures.camera import disp_to_depth, warp

from .photometric import IDENTITY_NOISE, min_reprojection, photometric_error
from .smoothness import edge_aware_smoothness


class MissingEntryError(KeyError):
    """An input mapping lacks a key that the loss needs; ``str()`` is the plain message."""

    def __str__(self) -> str:
        return str(self.args[0])


def _get(mapping: Mapping, key: Hashable, arg: str, why: str) -> Tensor:
    if key not in mapping:
        raise MissingEntryError(f'{arg} has no {key!r} entry ({why}); its keys are '
                                f'{list(mapping)}')
    return mapping[key]


@MODELS.register_module()
class MonocularDepthLoss(nn.Module):
    """Monodepth2's loss: min-reprojection + auto-masking + edge-aware smoothness, multi-scale.

    Args:
        scales: output scales; scale ``s`` disparity is ``(B, 1, H / 2**s, W / 2**s)``.
        frame_ids: frame ids of the sample, the target ``0`` first by convention; the others
            (e.g. ``-1, 1`` or ``'s'`` for a stereo partner) are warped into frame 0.
        min_depth, max_depth: range of :func:`geo3d.structures.camera.disp_to_depth`.
        disparity_smoothness: smoothness weight at scale 0 (divided by ``2**s``).
        ssim_weight: SSIM share of the photometric error.
        automask: Monodepth2's auto-masking with the unwarped sources.
        avg_reprojection: average over sources instead of the per-pixel minimum.
        align_corners, padding_mode: sampling of the warp (the normalisation always matches).
        identity_noise: std of the tie-breaking noise on the identity errors.

    Call ``loss(disps, colors, poses, K, inv_K)`` with
        disps: ``{('disp', s): (B, 1, h_s, w_s)}`` sigmoid disparities for every scale;
        colors: ``{('color', f, 0): (B, 3, H, W)}`` for every frame id, in [0, 1]; optional
            ``('color', 0, s)`` images are used for smoothness at scale ``s`` (else the target
            is resized to the disparity's size, bilinear with antialiasing);
        poses: ``{('T', f): (B, 4, 4)}`` target -> source transforms for every source frame;
        K, inv_K: (B, 4, 4) or (4, 4) pixel intrinsics at (H, W) and their inverse.
    Returns ``{'loss': total, 'reprojection_s{s}': ..., 'smoothness_s{s}': ...}`` where only
    ``'loss'`` contains the word "loss" (mmengine's ``parse_losses`` sums those keys; the
    per-scale terms are detached, for logging).
    """

    def __init__(self, scales: Sequence[int] = (0, 1, 2, 3),
                 frame_ids: Sequence[int | str] = (0, -1, 1), min_depth: float = 0.1,
                 max_depth: float = 100.0, disparity_smoothness: float = 1e-3,
                 ssim_weight: float = 0.85, automask: bool = True,
                 avg_reprojection: bool = False, align_corners: bool = True,
                 padding_mode: str = 'border', identity_noise: float = IDENTITY_NOISE) -> None:
        super().__init__()
        if not scales or any(s < 0 for s in scales):
            raise ValueError(f'scales must be a non-empty list of levels >= 0, got {scales}')
        if 0 not in frame_ids or len(frame_ids) < 2 or len(set(frame_ids)) != len(frame_ids):
            raise ValueError(f'frame_ids must hold the target 0 and at least one source, no '
                             f'duplicates, got {frame_ids}')
        if not 0 < min_depth < max_depth:
            raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
        if padding_mode not in ('border', 'zeros', 'reflection'):
            raise ValueError(f"padding_mode must be 'border', 'zeros' or 'reflection', got "
                             f'{padding_mode!r}')
        self.scales = list(scales)
        self.frame_ids = list(frame_ids)
        self.source_ids = [f for f in frame_ids if f != 0]
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.disparity_smoothness = disparity_smoothness
        self.ssim_weight = ssim_weight
        self.automask = automask
        self.avg_reprojection = avg_reprojection
        self.align_corners = align_corners
        self.padding_mode = padding_mode
        self.identity_noise = identity_noise

    def forward(self, disps: Mapping, colors: Mapping, poses: Mapping, K: Tensor,
                inv_K: Tensor) -> dict[str, Tensor]:
        """Loss dict (see the class doc)."""
        return self.forward_with_visuals(disps, colors, poses, K, inv_K)[0]

    def forward_with_visuals(self, disps: Mapping, colors: Mapping, poses: Mapping, K: Tensor,
                             inv_K: Tensor) -> tuple[dict[str, Tensor], dict[tuple, Tensor]]:
        """Loss dict and detached visuals.

        Visuals: ``('depth', s)`` (B, 1, H, W) full-resolution depth; ``('warped', f, s)``
        (B, 3, H, W) and ``('valid', f, s)`` (B, 1, H, W) bool per source; ``('automask', s)``
        (B, 1, H, W) bool, True where a warped source beats every unwarped one;
        ``('reprojection', s)`` (B, S, H, W) the photometric errors of the S warped sources and
        ``'identity'`` (B, S, H, W) those of the unwarped ones (with auto-masking, no noise).
        """
        target = _get(colors, ('color', 0, 0), 'colors', 'the target image')
        if target.ndim != 4:
            raise ValueError(f"colors[('color', 0, 0)] must be (B, 3, H, W), got "
                             f'{tuple(target.shape)}')
        b, _, h, w = target.shape
        K, inv_K = (m.expand(b, 4, 4) if m.ndim == 2 else m for m in (K, inv_K))
        sources = {f: _get(colors, ('color', f, 0), 'colors', f'source frame {f!r}')
                   for f in self.source_ids}
        for f, img in sources.items():
            if img.shape != target.shape:
                raise ValueError(f"colors[('color', {f!r}, 0)] has shape {tuple(img.shape)}, "
                                 f'the target {tuple(target.shape)}')
        T = {f: _get(poses, ('T', f), 'poses', f'target -> source {f!r} transform')
             for f in self.source_ids}
        identity = None
        if self.automask:
            identity = torch.cat([photometric_error(sources[f], target, self.ssim_weight)
                                  for f in self.source_ids], 1)

        losses: dict[str, Tensor] = {}
        visuals: dict[tuple, Tensor] = {}
        total = target.new_zeros(())
        for s in self.scales:
            disp = _get(disps, ('disp', s), 'disps', f'scale {s} is in scales={self.scales}')
            if disp.ndim != 4 or disp.shape[:2] != (b, 1):
                raise ValueError(f"disps[('disp', {s})] must be ({b}, 1, h, w), got "
                                 f'{tuple(disp.shape)}')
            disp_full = disp if disp.shape[-2:] == (h, w) else F.interpolate(
                disp, (h, w), mode='bilinear', align_corners=False)
            _, depth = disp_to_depth(disp_full, self.min_depth, self.max_depth)
            errors = []
            for f in self.source_ids:
                warped, valid = warp(sources[f], depth, T[f], K, inv_K,
                                     align_corners=self.align_corners,
                                     padding_mode=self.padding_mode)
                errors.append(photometric_error(warped, target, self.ssim_weight))
                visuals[('warped', f, s)] = warped.detach()
                visuals[('valid', f, s)] = valid
            rep = min_reprojection(torch.cat(errors, 1), identity, self.avg_reprojection,
                                   noise=self.identity_noise)
            visuals[('reprojection', s)] = torch.cat(errors, 1).detach()
            reprojection = rep.loss_map.mean()
            smoothness = edge_aware_smoothness(disp, self._color_at(colors, target, s, disp))
            total = total + reprojection + self.disparity_smoothness * smoothness / 2 ** s
            losses[f'reprojection_s{s}'] = reprojection.detach()
            losses[f'smoothness_s{s}'] = smoothness.detach()
            visuals[('depth', s)] = depth.detach()
            visuals[('automask', s)] = rep.automask
        if identity is not None:
            visuals['identity'] = identity.detach()
        losses['loss'] = total / len(self.scales)
        return losses, visuals

    @staticmethod
    def _color_at(colors: Mapping, target: Tensor, scale: int, disp: Tensor) -> Tensor:
        """The target image at the disparity's resolution."""
        img = colors.get(('color', 0, scale))
        if img is not None and img.shape[-2:] == disp.shape[-2:]:
            return img
        if target.shape[-2:] == disp.shape[-2:]:
            return target
        return F.interpolate(target, disp.shape[-2:], mode='bilinear', align_corners=False,
                             antialias=True)
