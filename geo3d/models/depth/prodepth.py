"""``ProDepth``: multi-frame depth with probabilistic fusion of the single-frame teacher.

Woo, Lee et al., "ProDepth: Boosting Self-Supervised Multi-Frame Monocular Depth with
Probabilistic Fusion", ECCV 2024 (github.com/Sungmin-Woo/ProDepth, commit 1519603 with the
Dec-2024 loss fix), built on :class:`~geo3d.models.depth.ManyDepth` as the released code is on
ManyDepth. What changes (all maps detached where ProDepth detaches them):

* ``aux_depth`` (:class:`~geo3d.models.depth.CostVolumeDepthNet`): a depth map ``D_cv`` from the
  *raw* cost volume and the detached matching features; trained by its own photometric loss
  (scale 0, min over sources, zero on augmented samples) with weight ``aux_weight`` = 0.3;
* static probability ``W = exp(-2/3 |D_cv - D_mono|) exp(-2/3 |s_cv - s_mono|)`` (depth and
  scaled disparity of ``disp_to_depth(., 0.1, 100)``) against the teacher;
* PCVM at 1/4 resolution: the cost volume is replaced by
  :class:`~geo3d.models.depth.ProbabilisticCostVolumeModulation` of it with the teacher's
  Gaussian (mean ``D_mono``, std = ``mono_uncert`` sigmoid x 20) weighted by ``W``; then
  ``reduce_conv(cat[features, modulated cost])`` as ManyDepth (no confidence masking);
* loss reweighting: ``M = W * [W > 0.4] * (1 - augmentation_mask)`` at full resolution, the
  reprojection loss ``sum(pe * M) / sum(M)`` and the consistency loss ``0.1 * mean(|s - s_mono|
  * (1 - M))`` on the scale-0 *scaled disparity* (ProDepth's fixed code; ``loss.consistency_on=
  'depth'`` is the alternative), smoothness 1e-3 / 2**s; total = mean over scales + 0.3 x aux.

The teacher's uncertainty head ``mono_uncert`` (Monodepth2's decoder, 1 sigmoid channel, on the
teacher's detached features) is only loaded in ProDepth's code; its training is not released.
geo3d trains it with :class:`~geo3d.models.depth.PhotometricUncertaintyLoss` (Laplacian NLL of
the teacher's min-reprojection error, Poggi et al., CVPR 2020) during ProDepth training
(``uncertainty_loss=None``: frozen, e.g. loaded). ``predict`` runs the teacher, its uncertainty
head and the pose net as well (PCVM needs them), like ProDepth's evaluation.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from geo3d.registry import MODELS
from geo3d.structures.camera import disp_to_depth

from .manydepth import (ManyDepth, MultiFrameOutput, TeacherOutput, _copy_into,
                        _load_strict, _pass_through_init)
from .monodepth import _fill, _merge
from .multiframe_loss import reprojection_error
from .pcvm import static_probability

__all__ = ['ProDepth']

#: ProDepth's defaults: 128 log-uniform ("SID") bins.
PRODEPTH_COST_VOLUME = dict(type='PlaneSweepCostVolume', num_bins=128, binning='log')


@MODELS.register_module()
class ProDepth(ManyDepth):
    """ProDepth (see the module doc). Arguments not listed are :class:`ManyDepth`'s.

    Args:
        encoder: :class:`~geo3d.models.backbones.MatchingEncoder` config; default ResNet-18
            with 128 log bins (ProDepth's default encoder is Lite-Mono-8M: ``encoder=dict(
            encoder=dict(type='LiteMonoEncoder', variant='lite-mono-8m', ...))`` with
            ``scales=(0, 1, 2)``).
        aux_depth: :class:`~geo3d.models.depth.CostVolumeDepthNet` config (``encoder``
            defaults to a copy of the matching encoder's, ``num_bins`` filled in).
        aux_loss: :class:`~geo3d.models.depth.MultiFrameDepthLoss` config of the auxiliary
            net (default scale 0, no smoothness, no consistency).
        aux_weight: weight of the auxiliary loss (0.3).
        uncertainty_decoder: config of ``mono_uncert`` (a ``DepthDecoder`` with 1 output
            channel on the teacher's features; ``num_ch_enc`` filled in, default
            ``scales=(0,)``).
        uncertainty_loss: :class:`~geo3d.models.depth.PhotometricUncertaintyLoss` config, or
            None to keep ``mono_uncert`` frozen (e.g. loaded with the teacher).
        pcvm: :class:`~geo3d.models.depth.ProbabilisticCostVolumeModulation` config
            (``var_scale=20``, ``gate=0.4``).
        static_alpha: decay of :func:`~geo3d.models.depth.pcvm.static_probability` (2/3).
        static_gate: the loss mask keeps pixels with ``W > static_gate`` (0.4).

    Submodules (besides ManyDepth's): ``mono_uncert``, ``aux_depth``, ``pcvm``, ``aux_loss``,
    ``uncertainty_loss``.
    """

    needs_teacher_at_inference = True

    def __init__(self, teacher: dict | None = None, encoder: dict | None = None,
                 aux_depth: dict | None = None, aux_loss: dict | None = None,
                 aux_weight: float = 0.3, uncertainty_decoder: dict | None = None,
                 uncertainty_loss: dict | None = dict(type='PhotometricUncertaintyLoss'),
                 pcvm: dict | None = None, static_alpha: float = 2.0 / 3.0,
                 static_gate: float = 0.4, **kwargs: Any) -> None:
        encoder = copy.deepcopy(dict(encoder or {}))
        encoder.setdefault('cost_volume', dict(PRODEPTH_COST_VOLUME))
        super().__init__(teacher=teacher, encoder=encoder, **kwargs)
        if static_alpha <= 0 or not 0.0 <= static_gate <= 1.0 or aux_weight < 0:
            raise ValueError(f'ProDepth: need static_alpha > 0, static_gate in [0, 1], '
                             f'aux_weight >= 0; got {static_alpha}, {static_gate}, {aux_weight}')
        self.static_alpha = float(static_alpha)
        self.static_gate = float(static_gate)
        self.aux_weight = float(aux_weight)

        unc = _merge(dict(type='DepthDecoder', scales=(0,)), uncertainty_decoder)
        _fill(unc, 'num_ch_enc', tuple(self.teacher.encoder.num_ch_enc), 'uncertainty_decoder')
        _fill(unc, 'num_output_channels', 1, 'uncertainty_decoder')
        self.mono_uncert = MODELS.build(unc)
        if 0 not in self.mono_uncert.scales:
            raise ValueError('ProDepth: uncertainty_decoder.scales must contain 0')

        aux = _merge(dict(type='CostVolumeDepthNet'), aux_depth)
        aux.setdefault('encoder', copy.deepcopy(
            encoder.get('encoder') or dict(type='DepthResNetEncoder', num_layers=18)))
        _fill(aux, 'num_bins', self.encoder.num_bins, 'aux_depth')
        self.aux_depth = MODELS.build(aux)
        aux_loss_cfg = _merge(dict(type='MultiFrameDepthLoss', scales=(0,),
                                   disparity_smoothness=0.0, consistency_weight=0.0), aux_loss)
        _fill(aux_loss_cfg, 'frame_ids', self.frame_ids, 'aux_loss')
        _fill(aux_loss_cfg, 'min_depth', self.min_depth, 'aux_loss')
        _fill(aux_loss_cfg, 'max_depth', self.max_depth, 'aux_loss')
        self.aux_loss = MODELS.build(aux_loss_cfg)
        self.pcvm = MODELS.build(_merge(dict(type='ProbabilisticCostVolumeModulation'), pcvm))
        self.uncertainty_loss = MODELS.build(dict(uncertainty_loss)) \
            if uncertainty_loss is not None else None
        if self.uncertainty_loss is None:
            self.mono_uncert.requires_grad_(False)

    def _default_loss(self) -> dict:
        """ProDepth's fixed code: consistency on the scale-0 scaled disparity, x 0.1."""
        return dict(consistency_weight=0.1, consistency_on='disparity', consistency_scales='first')

    def copy_teacher_weights(self) -> None:
        """As :meth:`ManyDepth.copy_teacher_weights`, and the auxiliary net too (its encoder
        and decoder from the teacher's, its fusion conv passing the matching features through),
        so that the auxiliary depth starts equal to the teacher's (W = 1)."""
        super().copy_teacher_weights()
        _copy_into(self.aux_depth.encoder, self.teacher.encoder, 'aux_depth.encoder')
        _copy_into(self.aux_depth.decoder, self.teacher.depth_decoder, 'aux_depth.decoder')
        _pass_through_init(self.aux_depth.fuse.conv, self.aux_depth.matching_channels)

    def load_teacher(self, path: str) -> None:
        """As :meth:`ManyDepth.load_teacher`; a checkpoint that also holds ``mono_uncert.*``
        (a ProDepth one) loads the uncertainty head too."""
        super().load_teacher(path)
        sd = self.read_checkpoint(path)
        unc = {k[len('mono_uncert.'):]: v for k, v in sd.items() if k.startswith('mono_uncert.')}
        if unc:
            _load_strict(self.mono_uncert, unc, path, 'uncertainty head (mono_uncert)')

    # ------------------------------------------------------------------ parts
    def _teacher_forward(self, frames: Mapping, stereo_T: Tensor | None, poses_for: Sequence,
                         train: bool) -> TeacherOutput:
        out = super()._teacher_forward(frames, stereo_T, poses_for, train)
        # the head sees detached teacher features: it never changes the teacher
        out.extra['sigma'] = self.mono_uncert([f.detach() for f in out.features])[0]
        return out

    def static_probability(self, disp_a: Tensor, disp_b: Tensor,
                           size: tuple[int, int] | None = None) -> Tensor:
        """W (B, 1, h, w) of two sigmoid disparities (bilinearly resized to ``size``)."""
        if size is not None:
            disp_a, disp_b = (d if d.shape[-2:] == size else
                              F.interpolate(d, size, mode='bilinear', align_corners=False)
                              for d in (disp_a, disp_b))
        s_a, d_a = disp_to_depth(disp_a.detach(), self.min_depth, self.max_depth)
        s_b, d_b = disp_to_depth(disp_b.detach(), self.min_depth, self.max_depth)
        return static_probability(d_a, d_b, s_a, s_b, self.static_alpha)

    def _multi_frame(self, image: Tensor, lookup: Tensor, poses: Tensor, K: Tensor,
                     teacher: TeacherOutput | None) -> MultiFrameOutput:
        if teacher is None:
            raise ValueError('ProDepth: the multi-frame network needs the teacher outputs')
        m = self.encoder.match(image, lookup, poses, K)
        cv = m.cost
        aux_disp = self.aux_depth(m.features, cv.raw)[0]
        size = tuple(cv.cost.shape[-2:])
        W_q = self.static_probability(aux_disp, teacher.disps[0], size)
        t_disp_q = F.interpolate(teacher.disps[0].detach(), size, mode='bilinear',
                                 align_corners=False)
        _, t_depth_q = disp_to_depth(t_disp_q, self.min_depth, self.max_depth)
        sigma_q = F.interpolate(teacher.extra['sigma'].detach(), size, mode='bilinear',
                                align_corners=False)
        cost = self.pcvm(cv.cost, t_depth_q, sigma_q, W_q, cv.bins)
        disps = self.depth_decoder(self.encoder.fuse(m.features, cost))
        return MultiFrameOutput(disps=disps, match=m,
                                extra={'aux_disp': aux_disp, 'static_probability_q': W_q,
                                       'modulated_cost': cost})

    def _reprojection_mask(self, out: MultiFrameOutput, teacher: TeacherOutput,
                           augmentation_mask: Tensor, size: tuple[int, int]) -> Tensor:
        """ProDepth's M = W * [W > gate] * (1 - augmentation_mask), (B, 1, H, W)."""
        W = self.static_probability(out.extra['aux_disp'], teacher.disps[0], size)
        out.extra['static_probability'] = W
        return W * (W > self.static_gate).to(W.dtype) * (1.0 - augmentation_mask)

    def _extra_losses(self, out: MultiFrameOutput, teacher: TeacherOutput, colors: Mapping,
                      poses: Mapping, K: Tensor, inv_K: Tensor, augmentation_mask: Tensor
                      ) -> dict[str, Tensor]:
        aux = self.aux_loss({('disp', 0): out.extra['aux_disp']}, colors, poses, K, inv_K,
                            1.0 - augmentation_mask)
        losses = {'loss_aux': self.aux_weight * aux['loss'],
                  'aux_reprojection_s0': aux['reprojection_s0'],
                  'static_fraction': (out.extra['static_probability'] > self.static_gate)
                  .float().mean()}
        if self.uncertainty_loss is not None:
            target = colors[('color', 0, 0)]
            with torch.no_grad():
                disp = teacher.disps[0]
                if disp.shape[-2:] != target.shape[-2:]:
                    disp = F.interpolate(disp, target.shape[-2:], mode='bilinear',
                                         align_corners=False)
                _, depth = disp_to_depth(disp, self.min_depth, self.max_depth)
                src = self.loss.source_ids
                pe = reprojection_error(depth, target, {f: colors[('color', f, 0)] for f in src},
                                        {f: poses[('T', f)] for f in src}, K, inv_K,
                                        self.loss.ssim_weight, self.loss.align_corners,
                                        self.loss.padding_mode)
            losses['loss_uncertainty'] = self.uncertainty_loss(teacher.extra['sigma'], pe)
        return losses
