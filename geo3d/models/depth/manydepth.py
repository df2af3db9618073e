"""``ManyDepth``: self-supervised multi-frame monocular depth with a cost volume.

Watson et al., "The Temporal Opportunist: Self-Supervised Multi-Frame Monocular Depth", CVPR
2021 (github.com/nianticlabs/manydepth, ``trainer.py``), assembled from geo3d's parts:

* ``teacher``: a :class:`~geo3d.models.depth.MonoDepth` (single-frame depth encoder/decoder =
  ManyDepth's ``mono_encoder`` / ``mono_depth``, the pose network, Monodepth2's loss);
* ``encoder``: :class:`~geo3d.models.backbones.MatchingEncoder` (encoder split at 1/4
  resolution, plane-sweep cost volume against the *matching* frames, default only the previous
  frame ``matching_ids=(0, -1)``, ``reduce_conv``); ``depth_decoder``: Monodepth2's decoder;
* ``loss``: :class:`~geo3d.models.depth.MultiFrameDepthLoss` over the *loss* frames
  (default ``(0, -1, 1)``).

One training step (``mode='loss'``)::

    teacher disparities + poses T(0->f)     (no_grad once the teacher is frozen)
    lookup frames, poses T.detach()         missing frames (metainfo / black image) -> zero pose
    matching augmentation per sample:       25 % static camera (lookup := current frame),
                                            25 % zero cost volume (poses := 0); flagged samples
                                            have augmentation_mask = 1
    multi-frame disparities                 cost volume on the current range of depth bins
    M = confidence * trusted * (1 - augmentation_mask)
        trusted: the cost volume's argmin depth and the teacher's depth differ by less than 100 %
        both ways (ManyDepth's ``compute_matching_mask``)
    loss        = MultiFrameDepthLoss(M): masked min-reprojection + L1(depth, teacher depth) on
                  (1 - M) + smoothness, poses detached
    loss_teacher = Monodepth2's loss of the teacher (while it is trained)
    bin range   <- EMA of the teacher's depth range (while the teacher is trained, or always)

The teacher is either trained jointly and frozen later (``FreezeTeacherHook(epoch=15)``, as
ManyDepth) or loaded from a single-frame checkpoint and frozen from the start
(``teacher_checkpoint=``, ProDepth's shipped mode). Frozen = ``requires_grad`` off, gradients
dropped (optimisers skip parameters without ``.grad``), BatchNorm in eval mode.

``predict`` runs the multi-frame network when the batch carries the matching frames (the test
dataset's ``frame_ids=(0, -1)``); a missing previous frame (first frame of a sequence, or a
dataset without it) gives ManyDepth's single-frame fallback, an all-zero pose. The output is
MonoDepth's (``pred_disp``, read by :class:`~geo3d.evaluation.DepthMetric`);
``predict_teacher=True`` evaluates the teacher instead.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from geo3d.registry import MODELS
from geo3d.structures.camera import disp_to_depth

from .monodepth import _fill, _merge

__all__ = ['ManyDepth', 'motion_mask', 'TeacherOutput', 'MultiFrameOutput']


def motion_mask(cost_depth: Tensor, teacher_depth: Tensor) -> Tensor:
    """ManyDepth's "trusted" mask: the cost volume and the teacher roughly agree.

    ``(c - t) / t < 1`` and ``(t - c) / c < 1`` (c = cost-volume argmin depth, t = teacher
    depth); elsewhere the pixel is likely on a moving object (or the matching failed).

    Args:
        cost_depth, teacher_depth: (B, 1, H, W) positive depths.

    Returns:
        (B, 1, H, W) bool, True = trusted.
    """
    if cost_depth.shape != teacher_depth.shape:
        raise ValueError(f'motion_mask: cost_depth {tuple(cost_depth.shape)} and teacher_depth '
                         f'{tuple(teacher_depth.shape)} must have the same shape')
    return ((cost_depth - teacher_depth) / teacher_depth < 1.0) & \
        ((teacher_depth - cost_depth) / cost_depth < 1.0)


def _load_strict(module: torch.nn.Module, sd: Mapping[str, Tensor], path: str, what: str
                 ) -> None:
    """``module.load_state_dict(sd, strict=True)`` with an error naming the file and keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        raise RuntimeError(f'{path}: not a checkpoint of the {what}; missing keys {missing[:5]}, '
                           f'unexpected keys {unexpected[:5]}, shape mismatches {wrong[:5]}')
    module.load_state_dict(dict(sd), strict=True)


def _copy_into(dst: torch.nn.Module, src: torch.nn.Module, name: str) -> None:
    """Copy ``src``'s state into ``dst``; every key of ``dst`` must exist in ``src`` with the
    same shape (``src`` may have more, e.g. decoder heads of more scales)."""
    own, theirs = dst.state_dict(), src.state_dict()
    bad = [k for k, v in own.items() if k not in theirs or theirs[k].shape != v.shape]
    if bad:
        raise ValueError(f'init_from_teacher: {name} ({type(dst).__name__}) does not have the '
                         f"teacher's architecture ({type(src).__name__}); keys without a "
                         f'counterpart: {bad[:5]}')
    dst.load_state_dict({k: theirs[k] for k in own}, strict=True)


@torch.no_grad()
def _pass_through_init(conv: torch.nn.Conv2d, channels: int) -> None:
    """A 3x3 conv over ``cat[features (channels), cost]`` that returns the features: identity
    centre taps on the first ``channels`` inputs, zeros elsewhere, zero bias."""
    if conv.out_channels != channels or conv.kernel_size != (3, 3):
        raise ValueError(f'init_from_teacher: expected a 3x3 conv with {channels} outputs, got '
                         f'{conv}')
    conv.weight.zero_()
    idx = torch.arange(channels)
    conv.weight[idx, idx, 1, 1] = 1.0
    if conv.bias is not None:
        conv.bias.zero_()


@dataclass
class TeacherOutput:
    """The single-frame teacher's outputs for one batch.

    Attributes:
        features: encoder features of the target frame (None when not computed).
        disps: ``{s: (B, 1, H / 2**s, W / 2**s)}`` sigmoid disparities.
        poses: ``{('T', f): (B, 4, 4)}`` target -> source transforms.
        extra: model-specific outputs (e.g. ProDepth's ``sigma``).
    """

    features: Sequence[Tensor] | None
    disps: dict[int, Tensor]
    poses: dict
    extra: dict = field(default_factory=dict)


@dataclass
class MultiFrameOutput:
    """The multi-frame network's outputs: ``disps`` ``{s: (B, 1, H_s, W_s)}``, the
    :class:`~geo3d.models.backbones.matching_encoder.MatchResult` ``match`` and ``extra``."""

    disps: dict[int, Tensor]
    match: Any
    extra: dict = field(default_factory=dict)


@MODELS.register_module()
class ManyDepth(BaseModel):
    """ManyDepth (see the module doc).

    Args:
        teacher: :class:`~geo3d.models.depth.MonoDepth` config of the single-frame teacher and
            pose network (``frame_ids``, ``min_depth``, ``max_depth`` filled in; ``scales``
            default to the model's).
        encoder: :class:`~geo3d.models.backbones.MatchingEncoder` config (ResNet-18, 96 linear
            bins over [0.1, 10] by default).
        depth_decoder: multi-frame depth decoder config (``num_ch_enc``, ``scales`` filled in).
        loss: :class:`~geo3d.models.depth.MultiFrameDepthLoss` config (``scales``,
            ``frame_ids``, ``min_depth``, ``max_depth`` filled in).
        frame_ids: loss frames, target 0 first (the training dataset's ``frame_ids``).
        matching_ids: frames of the cost volume, 0 first, then temporal offsets that are also
            loss frames (ManyDepth: ``(0, -1)``).
        scales: multi-frame decoder output scales.
        min_depth, max_depth: ``disp_to_depth`` range (0.1, 100).
        teacher_checkpoint: a geo3d checkpoint of a :class:`MonoDepth` (``tools/train.py``
            output, or a ManyDepth/ProDepth one: its ``teacher.*``), loaded into the teacher by
            :meth:`init_weights` (the runner calls it before training; evaluation from a
            checkpoint of this model never reads the file).
        freeze_teacher: freeze the teacher (and pose net) from the start; default: True iff
            ``teacher_checkpoint`` is given. Otherwise freeze later with ``FreezeTeacherHook``.
        static_camera_prob, zero_cost_volume_prob: matching augmentation probabilities per
            sample (ManyDepth 0.25 / 0.25); loss mode only.
        bin_update: ``'until_frozen'`` (ManyDepth: the cost volume's range follows an EMA of the
            teacher's depth range while the teacher trains) or ``'always'``. A fixed range:
            ``encoder.cost_volume.adaptive_range=False``.
        bin_warm_start: the first update sets the range to the teacher's batch range directly
            (no EMA); for a pretrained teacher with a range to learn. Remembered in the buffer
            ``bins_warm_started`` (checkpoints, resume).
        motion_masking: ManyDepth's trusted mask in M (off: confidence only).
        predict_teacher: ``predict`` evaluates the single-frame teacher.
        init_from_teacher: :meth:`init_weights` starts the multi-frame networks as the
            (loaded) teacher, see :meth:`copy_teacher_weights` (not in ManyDepth / ProDepth,
            which start from ImageNet; for short runs without ImageNet weights).
        data_preprocessor: default ``MultiFrameDataPreprocessor``.
        init_cfg: mmengine init config.

    Inputs: as :class:`MonoDepth` (``color`` / ``color_aug`` pyramids (B, F, 3, H_s, W_s),
    ``K`` / ``inv_K`` (B, S, 4, 4), optional ``stereo_T``), F = ``len(frame_ids)`` in training;
    any frame set holding 0 in ``predict`` / ``tensor`` (or a bare (B, 3, H, W) batch: the
    single-frame fallback).

    Modes: ``loss`` -> loss dict (``loss``, ``loss_teacher`` while the teacher trains, and
    detached logs); ``predict`` -> MonoDepth's per-sample dicts with ``pred_disp`` (1, H, W)
    of the multi-frame net; ``tensor`` -> ``{s: (B, 1, H_s, W_s)}`` multi-frame sigmoid
    disparities.
    """

    #: ``predict`` / ``tensor`` need the teacher's depth (ProDepth's PCVM does).
    needs_teacher_at_inference = False

    def __init__(self, teacher: dict | None = None, encoder: dict | None = None,
                 depth_decoder: dict | None = None, loss: dict | None = None,
                 frame_ids: Sequence[int | str] = (0, -1, 1),
                 matching_ids: Sequence[int] = (0, -1),
                 scales: Sequence[int] = (0, 1, 2, 3), min_depth: float = 0.1,
                 max_depth: float = 100.0, teacher_checkpoint: str | None = None,
                 freeze_teacher: bool | None = None, static_camera_prob: float = 0.25,
                 zero_cost_volume_prob: float = 0.25,
                 bin_update: Literal['until_frozen', 'always'] = 'until_frozen',
                 bin_warm_start: bool = False, motion_masking: bool = True,
                 predict_teacher: bool = False, init_from_teacher: bool = False,
                 data_preprocessor: dict | Any | None = None,
                 init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='MultiFrameDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name = type(self).__name__
        self.scales = tuple(int(s) for s in scales)
        t_cfg = _merge(dict(type='MonoDepth'), teacher)
        _fill(t_cfg, 'frame_ids', tuple(frame_ids), 'teacher')
        _fill(t_cfg, 'min_depth', float(min_depth), 'teacher')
        _fill(t_cfg, 'max_depth', float(max_depth), 'teacher')
        t_cfg.setdefault('scales', self.scales)
        self.teacher = MODELS.build(t_cfg)
        self.frame_ids = self.teacher.frame_ids
        self.min_depth, self.max_depth = self.teacher.min_depth, self.teacher.max_depth
        self.matching_ids = self._check_matching_ids(matching_ids)
        if self.teacher.pose_encoder is None:
            raise ValueError(f'{name}: the teacher has no pose network; frame_ids '
                             f'{list(self.frame_ids)} need a temporal source')

        self.encoder = MODELS.build(_merge(dict(type='MatchingEncoder'), encoder))
        dec = _merge(dict(type='DepthDecoder'), depth_decoder)
        _fill(dec, 'num_ch_enc', tuple(self.encoder.num_ch_enc), 'depth_decoder')
        _fill(dec, 'scales', self.scales, 'depth_decoder')
        self.depth_decoder = MODELS.build(dec)
        loss_cfg = _merge(dict(type='MultiFrameDepthLoss'), self._default_loss())
        loss_cfg.update(copy.deepcopy(dict(loss or {})))
        _fill(loss_cfg, 'scales', self.scales, 'loss')
        _fill(loss_cfg, 'frame_ids', self.frame_ids, 'loss')
        _fill(loss_cfg, 'min_depth', self.min_depth, 'loss')
        _fill(loss_cfg, 'max_depth', self.max_depth, 'loss')
        self.loss = MODELS.build(loss_cfg)
        if self.loss.consistency_weight > 0:
            needed = self.scales if self.loss.consistency_scales == 'each' else (0,)
            missing = [s for s in needed if s not in self.teacher.scales]
            if missing:
                raise ValueError(f'{name}: the consistency loss needs teacher scales {missing} '
                                 f'(teacher scales {list(self.teacher.scales)})')

        for pname, p in (('static_camera_prob', static_camera_prob),
                         ('zero_cost_volume_prob', zero_cost_volume_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'{name}: {pname} must be in [0, 1], got {p}')
        if static_camera_prob + zero_cost_volume_prob > 1.0:
            raise ValueError(f'{name}: static_camera_prob + zero_cost_volume_prob must be <= 1, '
                             f'got {static_camera_prob} + {zero_cost_volume_prob}')
        if bin_update not in ('until_frozen', 'always'):
            raise ValueError(f"{name}: bin_update must be 'until_frozen' or 'always', got "
                             f'{bin_update!r}')
        self.static_camera_prob = float(static_camera_prob)
        self.zero_cost_volume_prob = float(zero_cost_volume_prob)
        self.bin_update = bin_update
        self.bin_warm_start = bool(bin_warm_start)
        self.register_buffer('bins_warm_started', torch.tensor(False))
        self.motion_masking = bool(motion_masking)
        self.predict_teacher = bool(predict_teacher)
        self.init_from_teacher = bool(init_from_teacher)
        self.teacher_checkpoint = teacher_checkpoint
        self.teacher_frozen = False
        if freeze_teacher is None:
            freeze_teacher = teacher_checkpoint is not None
        if freeze_teacher:
            self.freeze_teacher()

    # ------------------------------------------------------------------ construction helpers
    def _default_loss(self) -> dict:
        """Loss settings of this model (ManyDepth: consistency on depth at every scale, x1)."""
        return dict(consistency_weight=1.0, consistency_on='depth', consistency_scales='each')

    def _check_matching_ids(self, matching_ids: Sequence[int]) -> tuple[int, ...]:
        ids = tuple(matching_ids)
        name = type(self).__name__
        if len(ids) < 2 or ids[0] != 0 or len(set(ids)) != len(ids) or any(
                isinstance(f, bool) or not isinstance(f, int) or f == 0 for f in ids[1:]):
            raise ValueError(f'{name}: matching_ids must be 0 then distinct temporal offsets, '
                             f'e.g. (0, -1), got {list(matching_ids)}')
        missing = [f for f in ids[1:] if f not in self.frame_ids]
        if missing:
            raise ValueError(f'{name}: matching frames {missing} are not loss frames '
                             f'{list(self.frame_ids)}; add them to frame_ids (the dataset '
                             f'loads frame_ids)')
        return ids

    # ------------------------------------------------------------------ teacher
    @property
    def mono_encoder(self) -> Any:
        """The teacher's depth encoder (ManyDepth's ``mono_encoder``)."""
        return self.teacher.encoder

    @property
    def mono_depth(self) -> Any:
        """The teacher's depth decoder (ManyDepth's ``mono_depth``)."""
        return self.teacher.depth_decoder

    def freeze_teacher(self) -> None:
        """Freeze the teacher and pose networks: ``requires_grad`` off, ``.grad`` dropped (the
        optimiser skips them from now on), eval mode (BatchNorm running statistics)."""
        for p in self.teacher.parameters():
            p.requires_grad_(False)
            p.grad = None
        self.teacher.eval()
        self.teacher_frozen = True

    def train(self, mode: bool = True) -> 'ManyDepth':
        super().train(mode)
        if self.teacher_frozen:
            self.teacher.eval()
        return self

    def init_weights(self) -> None:
        """mmengine's initialisation, then the teacher checkpoint (when given), then (with
        ``init_from_teacher``) the multi-frame networks from the teacher."""
        super().init_weights()
        if self.teacher_checkpoint:
            self.load_teacher(self.teacher_checkpoint)
        if self.init_from_teacher:
            self.copy_teacher_weights()

    def copy_teacher_weights(self) -> None:
        """Start the multi-frame network as the teacher: its encoder and decoder get the
        teacher's weights (same architecture needed) and ``reduce_conv`` passes the matching
        features through unchanged (identity on them, zero on the cost volume), so the
        multi-frame prediction equals the teacher's until training uses the cost volume.
        Not in ManyDepth (ImageNet init there); for short runs without ImageNet weights."""
        _copy_into(self.encoder.encoder, self.teacher.encoder, 'encoder.encoder')
        _copy_into(self.depth_decoder, self.teacher.depth_decoder, 'depth_decoder')
        _pass_through_init(self.encoder.reduce_conv[0], self.encoder.matching_channels)

    @staticmethod
    def read_checkpoint(path: str) -> dict[str, Tensor]:
        """The state dict of a geo3d checkpoint (``module.`` prefixes removed)."""
        from geo3d.utils.checkpoint import load_checkpoint_file
        ckpt = load_checkpoint_file(str(path), map_location='cpu')
        sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(sd, dict):
            raise RuntimeError(f'{path}: not a checkpoint (no state dict)')
        return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}

    def load_teacher(self, path: str) -> None:
        """Load a MonoDepth checkpoint (or the ``teacher.*`` of a ManyDepth/ProDepth one) into
        the teacher, strictly. Errors name the file and the missing / unexpected keys."""
        sd = self.read_checkpoint(path)
        if any(k.startswith('teacher.') for k in sd):
            sd = {k[len('teacher.'):]: v for k, v in sd.items() if k.startswith('teacher.')}
        _load_strict(self.teacher, sd, path, f'teacher ({type(self.teacher.encoder).__name__})')

    def _teacher_forward(self, frames: Mapping, stereo_T: Tensor | None, poses_for: Sequence,
                         train: bool) -> TeacherOutput:
        """Teacher disparities of ``frames[0]`` and poses for the sources ``poses_for``.

        Runs without gradient unless ``train`` and the teacher is not frozen.
        """
        with torch.set_grad_enabled(train and not self.teacher_frozen and
                                    torch.is_grad_enabled()):
            feats = self.teacher.encoder(frames[0])
            disps = self.teacher.depth_decoder(feats)
            poses = self.teacher.predict_poses(frames, stereo_T, poses_for) if poses_for else {}
        return TeacherOutput(features=feats, disps=disps, poses=poses)

    # ------------------------------------------------------------------ multi-frame net
    def _multi_frame(self, image: Tensor, lookup: Tensor, poses: Tensor, K: Tensor,
                     teacher: TeacherOutput | None) -> MultiFrameOutput:
        """ManyDepth's multi-frame network: the confidence-masked cost volume is fed."""
        features, match = self.encoder(image, lookup, poses, K)
        return MultiFrameOutput(disps=self.depth_decoder(features), match=match)

    def _missing(self, frames: Mapping, f: int, data_samples: Sequence[Any] | None) -> Tensor:
        """(B,) bool: frame ``f`` is missing (all-zero image, ManyDepth's test, or listed in
        the sample's ``missing_frames`` metainfo, geo3d's datasets)."""
        miss = frames[f].flatten(1).eq(0).all(1)
        for i, sample in enumerate(data_samples or []):
            meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
            if isinstance(meta, Mapping) and f in (meta.get('missing_frames') or ()):
                miss[i] = True
        return miss

    def _lookup(self, frames: Mapping, clean: Mapping, poses: Mapping,
                data_samples: Sequence[Any] | None) -> tuple[Tensor, Tensor]:
        """Lookup frames (B, N, 3, H, W) and detached poses (B, N, 4, 4), zero where missing."""
        imgs, mats = [], []
        for f in self.matching_ids[1:]:
            T = poses[('T', f)].detach()
            miss = self._missing(clean, f, data_samples)
            imgs.append(frames[f])
            mats.append(torch.where(miss.view(-1, 1, 1), torch.zeros_like(T), T))
        return torch.stack(imgs, 1), torch.stack(mats, 1)

    def _matching_augmentation(self, lookup: Tensor, poses: Tensor, current: Tensor
                               ) -> tuple[Tensor, Tensor, Tensor]:
        """ManyDepth's static-camera / zero-cost-volume augmentation.

        Returns the new lookup frames, poses and ``augmentation_mask`` (B, 1, 1, 1) float.
        """
        b = lookup.shape[0]
        r = torch.rand(b, device=lookup.device)
        static = r < self.static_camera_prob
        zero = (~static) & (r < self.static_camera_prob + self.zero_cost_volume_prob)
        lookup = torch.where(static.view(b, 1, 1, 1, 1), current.unsqueeze(1).expand_as(lookup),
                             lookup)
        poses = torch.where(zero.view(b, 1, 1, 1), torch.zeros_like(poses), poses)
        return lookup, poses, (static | zero).to(current.dtype).view(b, 1, 1, 1)

    def _update_bins(self, teacher: TeacherOutput) -> None:
        """EMA of the cost volume's range from the teacher's depth (ManyDepth)."""
        cv = self.encoder.cost_volume
        if self.bin_update == 'until_frozen' and self.teacher_frozen \
                and not (self.bin_warm_start and not bool(self.bins_warm_started)):
            return
        _, depth = disp_to_depth(teacher.disps[0].detach(), self.min_depth, self.max_depth)
        if self.bin_warm_start and not bool(self.bins_warm_started):
            momentum, cv.momentum = cv.momentum, 0.0
            try:
                cv.update_range(depth)
            finally:
                cv.momentum = momentum
            self.bins_warm_started.fill_(True)
        else:
            cv.update_range(depth)

    def _reprojection_mask(self, out: MultiFrameOutput, teacher: TeacherOutput,
                           augmentation_mask: Tensor, size: tuple[int, int]) -> Tensor:
        """ManyDepth's M = confidence * trusted * (1 - augmentation_mask), (B, 1, H, W)."""
        cv = out.match.cost
        mask = F.interpolate(cv.confidence, size, mode='nearest')
        if self.motion_masking:
            lowest = F.interpolate(self.encoder.cost_volume.argmin_depth(cv.cost, cv.bins),
                                   size, mode='nearest')
            t_disp = teacher.disps[0]
            if t_disp.shape[-2:] != size:
                t_disp = F.interpolate(t_disp, size, mode='bilinear', align_corners=False)
            _, t_depth = disp_to_depth(t_disp.detach(), self.min_depth, self.max_depth)
            mask = mask * motion_mask(lowest, t_depth).to(mask.dtype)
        return mask * (1.0 - augmentation_mask)

    def _extra_losses(self, out: MultiFrameOutput, teacher: TeacherOutput, colors: Mapping,
                      poses: Mapping, K: Tensor, inv_K: Tensor, augmentation_mask: Tensor
                      ) -> dict[str, Tensor]:
        """Further loss terms of subclasses (ManyDepth has none)."""
        return {}

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self._loss(inputs, data_samples)
        if mode == 'predict':
            return self._predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_disparities(inputs, data_samples)
        raise ValueError(f"{type(self).__name__}: mode must be 'loss', 'predict' or 'tensor', "
                         f'got {mode!r}')

    def _loss(self, inputs: Mapping, data_samples: Sequence[Any] | None) -> dict[str, Tensor]:
        name = type(self).__name__
        if not isinstance(inputs, Mapping):
            raise TypeError(f"{name}: mode='loss' needs the dataset's dict of inputs, got "
                            f'{type(inputs).__name__}')
        order = self._loss_frame_order(data_samples)
        t = self.teacher
        aug = t._frames(inputs, 'color_aug', 0, order)
        clean = t._frames(inputs, 'color', 0, order)
        K, inv_K = t._intrinsics(inputs, 'K'), t._intrinsics(inputs, 'inv_K')
        teacher = self._teacher_forward(aug, inputs.get('stereo_T'), t.source_ids, True)
        colors = {('color', f, 0): img for f, img in clean.items()}
        for s in set(self.scales) | set(t.scales):
            if 0 < s < len(inputs['color']):
                colors[('color', 0, s)] = t._frames(inputs, 'color', s, order)[0]
        losses: dict[str, Tensor] = {}
        if not self.teacher_frozen:
            t_losses = t.loss({('disp', s): d for s, d in teacher.disps.items()}, colors,
                              teacher.poses, K, inv_K)
            losses['loss_teacher'] = t_losses.pop('loss')
            losses.update({f'teacher_{k}': v for k, v in t_losses.items()})

        lookup, mposes = self._lookup(aug, clean, teacher.poses, data_samples)
        lookup, mposes, augmented = self._matching_augmentation(lookup, mposes, clean[0])
        if self.bin_warm_start and not bool(self.bins_warm_started):
            self._update_bins(teacher)  # the first step already matches over the teacher's range
        out = self._multi_frame(aug[0], lookup, mposes, K, teacher)
        self._update_bins(teacher)

        size = tuple(clean[0].shape[-2:])
        mask = self._reprojection_mask(out, teacher, augmented, size)
        det_poses = {k: v.detach() for k, v in teacher.poses.items()}
        m_losses = self.loss({('disp', s): d for s, d in out.disps.items()}, colors, det_poses,
                             K, inv_K, mask, {('disp', s): d for s, d in teacher.disps.items()})
        losses['loss'] = m_losses.pop('loss')
        losses.update(m_losses)
        losses.update(self._extra_losses(out, teacher, colors, det_poses, K, inv_K, augmented))
        cv = self.encoder.cost_volume
        losses['min_depth_bin'] = cv.min_depth_bin.detach().clone()
        losses['max_depth_bin'] = cv.max_depth_bin.detach().clone()
        losses['reprojection_mask'] = mask.detach().mean()
        return losses

    def _loss_frame_order(self, data_samples: Sequence[Any] | None) -> tuple:
        """The batch's frame order for training: exactly the loss frames (incl. matching)."""
        try:
            return self.teacher._frame_order(data_samples)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: mode='loss' needs every loss frame "
                             f'{list(self.frame_ids)} (matching frames '
                             f'{list(self.matching_ids[1:])} included) in the batch: '
                             f'{err}') from None

    def _inference_inputs(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None
                          ) -> tuple[dict, Tensor | None]:
        """``{frame id: (B, 3, H, W)}`` of the batch (un-augmented) and K (B, 4, 4) or None."""
        if isinstance(inputs, Tensor):
            if inputs.ndim != 4 or inputs.shape[1] != 3:
                raise ValueError(f'{type(self).__name__}: images must be (B, 3, H, W) in [0, 1], '
                                 f'got {tuple(inputs.shape)}')
            return {0: inputs}, None
        if not isinstance(inputs, Mapping):
            raise TypeError(f'{type(self).__name__}: inputs must be an image tensor (B, 3, H, W) '
                            f"or the dataset's dict, got {type(inputs).__name__}")
        order = self.teacher._frame_order(data_samples, False)
        frames = self.teacher._frames(inputs, 'color', 0, order)
        return frames, self.teacher._intrinsics(inputs, 'K')

    def predict_disparities(self, inputs: Tensor | Mapping,
                            data_samples: Sequence[Any] | None = None) -> dict[int, Tensor]:
        """Multi-frame sigmoid disparities ``{s: (B, 1, H / 2**s, W / 2**s)}`` of a batch.

        Matching frames absent from the batch, or missing for a sample, give that sample the
        single-frame fallback (zero pose). Poses come from the teacher's pose network.
        """
        frames, K = self._inference_inputs(inputs, data_samples)
        img = frames[0]
        b = img.shape[0]
        present = [f for f in self.matching_ids[1:] if f in frames]
        teacher = None
        with torch.no_grad():
            poses = self.teacher.predict_poses(frames, None, present) if present else {}
            if self.needs_teacher_at_inference:
                teacher = self._teacher_forward({0: img}, None, (), False)
        zeros = img.new_zeros(b, 4, 4)
        lookup, mats = [], []
        for f in self.matching_ids[1:]:
            if f in frames:
                miss = self._missing(frames, f, data_samples)
                T = torch.where(miss.view(-1, 1, 1), zeros, poses[('T', f)])
                lookup.append(frames[f])
                mats.append(T)
            else:
                lookup.append(torch.zeros_like(img))
                mats.append(zeros)
        if K is None:  # bare images: single-frame fallback, the intrinsics are never used
            K = torch.eye(4, dtype=img.dtype, device=img.device).expand(b, 4, 4)
        out = self._multi_frame(img, torch.stack(lookup, 1), torch.stack(mats, 1), K, teacher)
        return out.disps

    def _predict(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None
                 ) -> list[dict[str, Any]]:
        if self.predict_teacher:
            return self.teacher._predict(inputs, data_samples)
        disps = self.predict_disparities(inputs, data_samples)
        scaled, _ = disp_to_depth(disps[0], self.min_depth, self.max_depth)
        return self.teacher.pack_predictions(scaled, data_samples)

