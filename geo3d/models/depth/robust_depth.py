"""``RobustDepth``: self-supervised depth that stays right in bad weather and at night.

Saunders, Vogiatzis, Manso, "Self-supervised Monocular Depth Estimation: Let's Talk About The
Weather", ICCV 2023 (github.com/kieran514/robustdepth), on top of :class:`MonoDepth`
(Monodepth2). Per training batch:

1. **Clean pass**: depth ``D_c`` of the clean target (the dataset's colour-jittered
   ``color_aug``) and poses ``T_c`` of the clean frames, as Monodepth2.
2. **Corrupted inputs, on the fly**: one effect and one severity per sample
   (:class:`~geo3d.datasets.transforms.weather.RandomCorruption`, the same effect for all of
   the sample's frames) rendered from the clean ``color_aug`` frames; the effects that need
   depth (fog, rain, snow) get the clean prediction ``D_c`` (detached, median-scaled to
   ``physics_median_depth`` metres; the sources use the target's depth) or, with
   ``physics_depth='ramp'``, a fixed depth ramp (far at the top, near at the bottom).
   Robust-Depth rendered these offline with GANs and a rain renderer.
3. **Augmented pass** through the SAME depth and pose networks: ``D_a``, ``T_a``.
4. **Semi-augmented warping**: ``D_a`` warps the CLEAN sources with the CLEAN poses ``T_c``
   and is compared with the CLEAN target, so corrupted pixels never enter a photometric
   error. Both branches get Monodepth2's loss (:class:`MonocularDepthLoss`: per-pixel
   minimum reprojection, auto-masking with the clean identity errors, edge-aware smoothness
   on the clean image).
5. **Bidirectional pseudo-supervised depth loss** (:func:`pseudo_depth_loss`): per pixel and
   scale, whichever branch reprojects better (and beats the identity errors) teaches the
   other: ``log(1 + |D_a - stopgrad(D_c)|)`` where the clean branch wins,
   ``log(1 + |D_c - stopgrad(D_a)|)`` where the augmented one wins (sigmoid disparities at
   full resolution), masked means, ``/ 2**s``, averaged over scales, weight 0.01.
6. **Pseudo-supervised pose loss** (:func:`pose_consistency_loss`): L1 between the augmented
   and the stop-gradient clean axis-angle and translation (each halved), averaged over
   temporal sources, weight 0.01.

Total: ``L_clean + L_aug + 0.01 L_depth + 0.01 L_pose``. Prediction uses the depth network
alone, exactly as :class:`MonoDepth` (a RobustDepth checkpoint loads into MonoDepth and back:
the corruptions have no parameters).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from geo3d.datasets.transforms.weather import RandomCorruption
from geo3d.registry import MODELS
from geo3d.structures.camera import pose_vec_to_matrix

from .monodepth import STEREO_FRAME_ID, MonoDepth

__all__ = ['RobustDepth', 'pseudo_depth_loss', 'pose_consistency_loss', 'masked_mean',
           'ROBUST_DEPTH_CORRUPTIONS', 'ramp_depth']

#: Robust-Depth's augmentation set, as on-the-fly effects (its GAN/renderer outputs and the
#: ImageNet-C corruptions it used, see docs/robust_depth.md)
ROBUST_DEPTH_CORRUPTIONS = (
    'rain', 'fog', 'snow', 'night', 'dusk', 'motion_blur', 'linear_blur', 'greyscale',
    'channel_drop', 'red_only', 'green_only', 'blue_only', 'gaussian_noise',
    'rain+fog', 'rain+night', 'fog+night', 'rain+fog+night', 'dusk+fog', 'dusk+rain',
    'dusk+rain+fog')


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """``sum(x * mask) / max(sum(mask), 1)`` (0 for an empty mask)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def pseudo_depth_loss(disp_clean: Tensor, disp_aug: Tensor, error_clean: Tensor,
                      error_aug: Tensor, error_identity: Tensor | None = None
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Robust-Depth's bidirectional pseudo-supervised depth loss at one scale.

    Args:
        disp_clean, disp_aug: (B, 1, H, W) disparities of the clean and augmented branch.
        error_clean, error_aug: (B, 1, H, W) per-pixel minimum reprojection errors of each
            branch (only compared, no gradient needed).
        error_identity: (B, 1, H, W) minimum error of the unwarped sources (auto-masking):
            a pixel teaches nothing where it is lowest; None = no identity term.

    Returns:
        (loss, clean_better, aug_better): ``masked_mean(log(1 + |D_a - sg(D_c)|),
        clean_better) + masked_mean(log(1 + |D_c - sg(D_a)|), aug_better)`` and the two
        (B, 1, H, W) bool masks (a tie belongs to neither).
    """
    shapes = {tuple(t.shape) for t in (disp_clean, disp_aug, error_clean, error_aug)}
    if error_identity is not None:
        shapes.add(tuple(error_identity.shape))
    if len(shapes) != 1 or disp_clean.ndim != 4 or disp_clean.shape[1] != 1:
        raise ValueError(f'pseudo_depth_loss: all inputs must be one (B, 1, H, W) shape, got '
                         f'{sorted(shapes)}')
    with torch.no_grad():
        clean_better = error_clean < error_aug
        aug_better = error_aug < error_clean
        if error_identity is not None:
            clean_better &= error_clean < error_identity
            aug_better &= error_aug < error_identity
    to_clean = torch.log1p((disp_aug - disp_clean.detach()).abs())
    to_aug = torch.log1p((disp_clean - disp_aug.detach()).abs())
    loss = masked_mean(to_clean, clean_better) + masked_mean(to_aug, aug_better)
    return loss, clean_better, aug_better


def pose_consistency_loss(axisangle_aug: Tensor, translation_aug: Tensor,
                          axisangle_clean: Tensor, translation_clean: Tensor) -> Tensor:
    """``(mean|a_aug - sg(a_clean)| + mean|t_aug - sg(t_clean)|) / 2``; all (B, ..., 3)."""
    for name, t in (('axisangle_aug', axisangle_aug), ('translation_aug', translation_aug)):
        ref = axisangle_clean if name.startswith('axis') else translation_clean
        if t.shape != ref.shape or t.shape[-1] != 3:
            raise ValueError(f'pose_consistency_loss: {name} {tuple(t.shape)} must match the '
                             f'clean one {tuple(ref.shape)}, last dim 3')
    return 0.5 * ((axisangle_aug - axisangle_clean.detach()).abs().mean()
                  + (translation_aug - translation_clean.detach()).abs().mean())


def ramp_depth(batch: int, height: int, width: int, near: float, far: float,
               like: Tensor) -> Tensor:
    """(B, 1, H, W) a road-scene prior: inverse depth linear from ``1 / far`` (top row) to
    ``1 / near`` (bottom row)."""
    t = torch.linspace(0.0, 1.0, height, device=like.device, dtype=like.dtype)
    inv = 1.0 / far + (1.0 / near - 1.0 / far) * t
    return (1.0 / inv).view(1, 1, height, 1).expand(batch, 1, height, width).contiguous()


@MODELS.register_module()
class RobustDepth(MonoDepth):
    """Robust-Depth on top of Monodepth2 (see the module doc).

    Args:
        corruptions: the effects drawn from per sample (names, ``'+'`` combinations, configs;
            see :func:`~geo3d.datasets.transforms.weather.build_corruption`); default
            ``ROBUST_DEPTH_CORRUPTIONS``.
        severities: severities drawn from per sample (Robust-Depth: random 1..5).
        clean_prob: probability that a sample's augmented branch stays clean.
        physics_depth: depth given to the effects that need it: ``'prediction'`` (the clean
            branch's depth, detached, median-scaled per sample to ``physics_median_depth``
            metres) or ``'ramp'`` (:func:`ramp_depth` over ``physics_depth_range``).
        physics_median_depth: median depth (m) of a KITTI frame, used to give the predicted
            depth (known up to scale) metres.
        physics_depth_range: (near, far) metres of the ramp, and the clamp of the scaled
            prediction.
        pseudo_depth_weight: weight of :func:`pseudo_depth_loss` (0.01).
        pseudo_pose_weight: weight of :func:`pose_consistency_loss` (0.01).
        corruption_seed: None (default) draws every batch's generator seed from torch's global
            RNG (mmengine seeds it with ``randomness.seed``); an int fixes a private stream
            (for tests).
        **kwargs: :class:`MonoDepth`'s arguments (networks, loss, frame ids, scales, depth
            range, data preprocessor).

    ``loss`` mode returns ``loss`` (the total) and detached terms ``clean_photometric``,
    ``aug_photometric`` (each branch's Monodepth2 loss), ``pseudo_depth``, ``pseudo_pose``
    (unweighted) and ``clean_teaches`` (share of pixels where the clean branch teaches).
    ``predict`` / ``tensor`` are :class:`MonoDepth`'s.
    """

    def __init__(self, corruptions: Sequence[Any] = ROBUST_DEPTH_CORRUPTIONS,
                 severities: Sequence[int] = (1, 2, 3, 4, 5), clean_prob: float = 0.0,
                 physics_depth: str = 'prediction', physics_median_depth: float = 15.0,
                 physics_depth_range: Sequence[float] = (1.0, 200.0),
                 pseudo_depth_weight: float = 0.01, pseudo_pose_weight: float = 0.01,
                 corruption_seed: int | None = None, **kwargs: Any) -> None:
        if physics_depth not in ('prediction', 'ramp'):
            raise ValueError(f"RobustDepth: physics_depth must be 'prediction' or 'ramp', got "
                             f'{physics_depth!r}')
        near, far = (float(v) for v in physics_depth_range)
        if not 0 < near < far:
            raise ValueError(f'RobustDepth: physics_depth_range must be (near, far) with '
                             f'0 < near < far, got {tuple(physics_depth_range)}')
        if physics_median_depth <= 0:
            raise ValueError(f'RobustDepth: physics_median_depth must be > 0, got '
                             f'{physics_median_depth}')
        frame_ids = kwargs.get('frame_ids', (0, -1, 1))
        if not any(isinstance(f, int) and not isinstance(f, bool) and f != 0
                   for f in frame_ids):
            raise ValueError(f'RobustDepth: needs temporal source frames (frame_ids with -1 / 1) '
                             f'for its pose networks and pose loss, got {tuple(frame_ids)}')
        corruption = RandomCorruption(list(corruptions), severities, clean_prob)
        super().__init__(**kwargs)
        self.corruption = corruption
        self.physics_depth = physics_depth
        self.physics_median_depth = float(physics_median_depth)
        self.physics_depth_range = (near, far)
        self.pseudo_depth_weight = float(pseudo_depth_weight)
        self.pseudo_pose_weight = float(pseudo_pose_weight)
        self._generator = None if corruption_seed is None else \
            torch.Generator().manual_seed(int(corruption_seed))

    # ------------------------------------------------------------------ networks
    def predict_pose_params(self, frames: Mapping[int | str, Tensor]
                            ) -> dict[int, tuple[Tensor, Tensor, Tensor]]:
        """Pose branch with the raw outputs: ``{f: (axisangle (B, 1, 3), translation
        (B, 1, 3), T (B, 4, 4) target -> source)}`` for every temporal source ``f``
        (pairs stacked in temporal order and inverted for ``f < 0``, as
        :meth:`MonoDepth.predict_poses`)."""
        out = {}
        for f in self.temporal_ids:
            pair = [frames[f], frames[0]] if f < 0 else [frames[0], frames[f]]
            axisangle, translation = self.pose_decoder(self.pose_encoder(torch.cat(pair, 1)))
            a, t = axisangle[:, 0], translation[:, 0]
            out[f] = (a, t, pose_vec_to_matrix(a, t, invert=f < 0))
        return out

    def _poses(self, params: Mapping[int, tuple[Tensor, Tensor, Tensor]],
               stereo_T: Tensor | None) -> dict[tuple[str, int | str], Tensor]:
        poses: dict[tuple[str, int | str], Tensor] = {('T', f): p[2] for f, p in params.items()}
        if STEREO_FRAME_ID in self.source_ids:
            if stereo_T is None:
                raise KeyError("RobustDepth: frame 's' needs inputs['stereo_T']")
            poses[('T', STEREO_FRAME_ID)] = stereo_T
        return poses

    # ------------------------------------------------------------------ corruption
    def physics_depth_of(self, disp: Tensor) -> Tensor:
        """(B, 1, H, W) sigmoid disparity of the clean target -> metres for the effects."""
        b, _, h, w = disp.shape
        near, far = self.physics_depth_range
        if self.physics_depth == 'ramp':
            return ramp_depth(b, h, w, near, far, disp)
        _, depth = self.disp_to_depth(disp.detach())
        med = depth.flatten(1).median(1).values.view(b, 1, 1, 1)
        return (depth * (self.physics_median_depth / med)).clamp(near, far)

    def _batch_generator(self, device: torch.device) -> torch.Generator:
        if self._generator is not None:
            return self._generator
        seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        return torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def corrupt_frames(self, frames: Mapping[int | str, Tensor], depth: Tensor | None,
                       generator: torch.Generator | None = None) -> dict[int | str, Tensor]:
        """Corrupt the target and temporal sources of a batch (one effect and severity per
        sample, shared by its frames).

        Args:
            frames: ``{frame id: (B, 3, H, W)}`` in [0, 1]; frame 0 and the temporal sources
                are corrupted (the stereo partner only enters the clean loss).
            depth: (B, 1, H, W) metres of the target (used for every frame), or None when
                no effect needs depth.
            generator: the random stream (default: a fresh seed per call, see
                ``corruption_seed``).

        Returns:
            ``{frame id: (B, 3, H, W)}`` for 0 and the temporal sources.
        """
        ids = [0] + list(self.temporal_ids)
        b = frames[0].shape[0]
        g = generator if generator is not None else self._batch_generator(frames[0].device)
        choice, severity = self.corruption.sample(b, g)
        n = len(ids)
        stack = torch.cat([frames[f] for f in ids]).clamp(0.0, 1.0)
        d = depth.repeat(n, 1, 1, 1) if depth is not None else None
        if d is None and self.corruption.needs_depth:
            raise ValueError('RobustDepth: the corruptions need depth')
        out = self.corruption.apply_choices(stack, d, choice.repeat(n), severity.repeat(n), g)
        return {f: out[i * b:(i + 1) * b] for i, f in enumerate(ids)}

    # ------------------------------------------------------------------ loss
    def _loss(self, inputs: Mapping, data_samples: Sequence[Any] | None) -> dict[str, Tensor]:
        if not isinstance(inputs, Mapping):
            raise TypeError(f"RobustDepth: mode='loss' needs the dataset's dict of inputs, got "
                            f'{type(inputs).__name__}')
        order = self._frame_order(data_samples)
        aug = self._frames(inputs, 'color_aug', 0, order)
        colors = {('color', f, 0): img
                  for f, img in self._frames(inputs, 'color', 0, order).items()}
        for s in self.scales:
            if 0 < s < len(inputs['color']):
                colors[('color', 0, s)] = self._frames(inputs, 'color', s, order)[0]
        K, inv_K = self._intrinsics(inputs, 'K'), self._intrinsics(inputs, 'inv_K')
        stereo_T = inputs.get('stereo_T')

        # 1. clean pass
        disps_c = self.predict_disparities(aug[0])
        pose_c = self.predict_pose_params(aug)
        poses_c = self._poses(pose_c, stereo_T)
        # 2. corrupted inputs from the clean frames
        depth = self.physics_depth_of(disps_c[0]) if self.corruption.needs_depth else None
        corrupted = self.corrupt_frames(aug, depth)
        # 3. augmented pass through the same networks
        disps_a = self.predict_disparities(corrupted[0])
        pose_a = self.predict_pose_params(corrupted)
        # 4. semi-augmented warping: clean sources, clean poses, clean target for both
        loss = self.loss
        loss_c, vis_c = loss.forward_with_visuals(
            {('disp', s): d for s, d in disps_c.items()}, colors, poses_c, K, inv_K)
        loss_a, vis_a = loss.forward_with_visuals(
            {('disp', s): d for s, d in disps_a.items()}, colors, poses_c, K, inv_K)

        # 5. bidirectional pseudo-supervised depth loss, from the branches' per-pixel errors
        h, w = colors[('color', 0, 0)].shape[-2:]
        identity = vis_c['identity'].min(1, keepdim=True).values if loss.automask else None
        pseudo = loss_c['loss'].new_zeros(())
        clean_teaches = loss_c['loss'].new_zeros(())
        for s in self.scales:
            err_c = vis_c[('reprojection', s)].min(1, keepdim=True).values
            err_a = vis_a[('reprojection', s)].min(1, keepdim=True).values
            dc, da = (d if d.shape[-2:] == (h, w) else F.interpolate(
                d, (h, w), mode='bilinear', align_corners=False) for d in (disps_c[s], disps_a[s]))
            term, clean_better, _ = pseudo_depth_loss(dc, da, err_c, err_a, identity)
            pseudo = pseudo + term / 2 ** s
            clean_teaches = clean_teaches + clean_better.float().mean()
        pseudo = pseudo / len(self.scales)
        # 6. pose consistency
        pose_loss = sum(pose_consistency_loss(pose_a[f][0], pose_a[f][1], pose_c[f][0],
                                              pose_c[f][1]) for f in self.temporal_ids)
        pose_loss = pose_loss / len(self.temporal_ids)

        total = loss_c['loss'] + loss_a['loss'] + self.pseudo_depth_weight * pseudo + \
            self.pseudo_pose_weight * pose_loss
        return {'loss': total, 'clean_photometric': loss_c['loss'].detach(),
                'aug_photometric': loss_a['loss'].detach(), 'pseudo_depth': pseudo.detach(),
                'pseudo_pose': pose_loss.detach(),
                'clean_teaches': (clean_teaches / len(self.scales)).detach()}
