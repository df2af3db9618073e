"""Multi-frame depth encoder: an image encoder split at 1/4 resolution around a cost volume.

Follows ManyDepth (Watson et al., "The Temporal Opportunist: Self-Supervised Multi-Frame
Monocular Depth", CVPR 2021, github.com/nianticlabs/manydepth, ``ResnetEncoderMatching``) and
ProDepth (Woo et al., ECCV 2024, which uses the same structure around Lite-Mono)::

    feats  = encoder.encode_until_matching(I_0)              # [..., F_0 (B, C, H/4, W/4)]
    F_src  = encoder.encode_until_matching(I_src)[-1]        # no_grad, every lookup frame
    cv     = PlaneSweepCostVolume(F_0, F_src, T_0->src, K/4)  # no_grad, (B, D, H/4, W/4)
    fused  = ReLU(Conv3x3(cat[F_0, cost]))                    # "reduce_conv", D + C -> C
    out    = encoder.encode_after_matching(feats, fused)      # deeper stages eat `fused`;
                                                              # the 1/4 skip stays F_0

ManyDepth feeds ``cost = cv.cost * cv.confidence`` (:meth:`MatchingEncoder.forward`); other
models (ProDepth's PCVM) call :meth:`~MatchingEncoder.match` and :meth:`~MatchingEncoder.fuse`
themselves with a modulated volume. As in ManyDepth the cost volume carries no gradient: the
encoder learns through the current frame's features in ``reduce_conv`` and the later stages.

Any encoder with the split API works (``DepthResNetEncoder``: split after ``layer1``;
``LiteMonoEncoder``: after stage 0): ``num_ch_enc`` with level ``i`` at ``H / 2**(i+1)``,
``encode_until_matching(x) -> list`` whose last map is the 1/4-resolution level ``num_ch_enc[1]``,
and ``encode_after_matching(feats, fused=None) -> list`` of all levels (``fused`` feeds the next
stage while ``feats[-1]`` stays the returned 1/4 map).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['MatchingEncoder', 'MatchResult', 'scale_pixel_intrinsics']

#: ManyDepth builds its cost volume at 1/4 of the input resolution, i.e. encoder level 1.
MATCHING_LEVEL = 1


def scale_pixel_intrinsics(K: Tensor, in_size: Sequence[int], out_size: Sequence[int]
                           ) -> tuple[Tensor, Tensor]:
    """Pixel intrinsics of an (H, W) image for a map of size (h, w) covering the same view.

    Rows 0 and 1 of ``K`` are multiplied by ``w / W`` and ``h / H`` (Monodepth2's per-scale
    ``K_s``: the normalised K times the scale's width/height).

    Args:
        K: (B, 4, 4) pixel intrinsics at ``in_size``.
        in_size, out_size: (H, W) and (h, w).

    Returns:
        K_s and its inverse, (B, 4, 4) each.
    """
    if K.ndim != 3 or K.shape[-2:] != (4, 4):
        raise ValueError(f'scale_pixel_intrinsics: K must be (B, 4, 4), got {tuple(K.shape)}')
    (H, W), (h, w) = in_size, out_size
    scale = K.new_tensor([w / W, h / H, 1.0, 1.0]).view(1, 4, 1)
    K_s = K * scale
    return K_s, torch.linalg.inv(K_s)


class MatchResult(NamedTuple):
    """Result of :meth:`MatchingEncoder.match`.

    Attributes:
        features: ``encode_until_matching`` of the target image, as the encoder returned it
            (e.g. ``LiteMonoFeatures``); the last map (B, C, h, w) is the matching level (with
            gradient).
        cost: the :class:`~geo3d.models.depth.cost_volume.CostVolumeOutput` (no gradient).
        K, inv_K: (B, 4, 4) intrinsics at the matching resolution (h, w).
    """

    features: Sequence[Tensor]
    cost: object
    K: Tensor
    inv_K: Tensor


@MODELS.register_module()
class MatchingEncoder(BaseModule):
    """ManyDepth's multi-frame encoder, generic over encoders with the split API.

    Args:
        encoder: image encoder config (default ``DepthResNetEncoder`` ResNet-18, random init).
            Its ``pretrained`` (True or a path) is loaded by :meth:`init_weights`, as
            ``MonoDepth`` does, so evaluation from a checkpoint never reads it.
        cost_volume: :class:`~geo3d.models.depth.cost_volume.PlaneSweepCostVolume` config
            (ManyDepth: 96 linear bins, range [0.1, 10] adapted during training).
        init_cfg: mmengine init config.

    Submodules: ``encoder``, ``cost_volume`` (its ``min_depth_bin`` / ``max_depth_bin``
    buffers hold the bin range in checkpoints), ``reduce_conv`` (3x3 conv, C + D -> C, ReLU).
    ``num_ch_enc`` is the encoder's.
    """

    def __init__(self, encoder: dict | None = None, cost_volume: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        enc = dict(encoder or dict(type='DepthResNetEncoder', num_layers=18))
        # ImageNet weights are loaded by init_weights() (the runner calls it before training)
        self._pretrained = enc.pop('pretrained', None)
        self.encoder = MODELS.build(enc)
        for name in ('encode_until_matching', 'encode_after_matching', 'num_ch_enc'):
            if not hasattr(self.encoder, name):
                raise TypeError(f'MatchingEncoder: encoder {type(self.encoder).__name__} has no '
                                f'{name!r}; it needs the split API (encode_until_matching / '
                                f'encode_after_matching, num_ch_enc)')
        self.cost_volume = MODELS.build(dict(cost_volume or dict(type='PlaneSweepCostVolume')))
        self.num_ch_enc = tuple(int(c) for c in self.encoder.num_ch_enc)
        self.matching_channels = int(getattr(self.encoder, 'matching_channels',
                                             self.num_ch_enc[MATCHING_LEVEL]))
        self.num_bins = int(self.cost_volume.num_bins)
        self.reduce_conv = nn.Sequential(
            nn.Conv2d(self.matching_channels + self.num_bins, self.matching_channels, 3,
                      padding=1),
            nn.ReLU(inplace=True))

    def init_weights(self) -> None:
        """mmengine's initialisation, then the encoder's ``pretrained`` weights (True: the
        encoder's default download, a path: that file) through its ``load_imagenet``."""
        super().init_weights()
        if self._pretrained:
            self.encoder.load_imagenet(None if self._pretrained is True else self._pretrained)

    # ------------------------------------------------------------------ parts
    def match(self, image: Tensor, lookup_images: Tensor, poses: Tensor, K: Tensor,
              inv_K: Tensor | None = None) -> MatchResult:
        """Target features (with gradient) and the cost volume against the lookup frames.

        Args:
            image: (B, 3, H, W) target image in [0, 1] (the network input).
            lookup_images: (B, N, 3, H, W) lookup frames.
            poses: (B, N, 4, 4) target -> lookup transforms; an all-zero matrix marks a
                missing lookup frame (skipped by the cost volume). When every pose of the
                batch is zero the lookup frames are not encoded at all.
            K: (B, 4, 4) pixel intrinsics at (H, W); scaled here to the matching resolution.
            inv_K: unused (recomputed at the matching resolution); accepted for symmetry.
        """
        if not isinstance(image, Tensor) or image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f'MatchingEncoder: image must be (B, 3, H, W), got '
                             f'{_shape(image)}')
        b, _, H, W = image.shape
        if not isinstance(lookup_images, Tensor) or lookup_images.ndim != 5 \
                or lookup_images.shape[0] != b or lookup_images.shape[2:] != image.shape[1:]:
            raise ValueError(f'MatchingEncoder: lookup_images must be (B, N, 3, H, W) = '
                             f'({b}, N, 3, {H}, {W}), got {_shape(lookup_images)}')
        n = lookup_images.shape[1]
        if not isinstance(poses, Tensor) or tuple(poses.shape) != (b, n, 4, 4):
            raise ValueError(f'MatchingEncoder: poses must be (B, N, 4, 4) = ({b}, {n}, 4, 4), '
                             f'got {_shape(poses)}')
        if not isinstance(K, Tensor) or tuple(K.shape) != (b, 4, 4):
            raise ValueError(f'MatchingEncoder: K must be ({b}, 4, 4) pixel intrinsics at the '
                             f'input size, got {_shape(K)}')
        features = self.encoder.encode_until_matching(image)  # keep its type (LiteMonoFeatures)
        target = features[-1]
        if target.ndim != 4 or target.shape[1] != self.matching_channels:
            raise ValueError(f'MatchingEncoder: the last map of encode_until_matching should have '
                             f'{self.matching_channels} channels (num_ch_enc[1]), got '
                             f'{tuple(target.shape)}')
        h, w = target.shape[-2:]
        K_m, inv_K_m = scale_pixel_intrinsics(K.to(target.dtype), (H, W), (h, w))
        with torch.no_grad():
            if bool(poses.flatten(2).eq(0).all()):
                lookup = target.new_zeros(b, n, *target.shape[1:])  # nothing to match against
            else:
                lookup = self.encoder.encode_until_matching(lookup_images.flatten(0, 1))[-1]
                lookup = lookup.view(b, n, *lookup.shape[1:])
            cost = self.cost_volume(target.detach(), lookup, poses.to(target.dtype), K_m,
                                    inv_K_m)
        return MatchResult(features=features, cost=cost, K=K_m, inv_K=inv_K_m)

    def fuse(self, features: Sequence[Tensor], cost: Tensor) -> list[Tensor]:
        """``fused = reduce_conv(cat[features[-1], cost])`` goes through the encoder's
        remaining stages -> the full feature list (``len(num_ch_enc)`` maps). As ManyDepth and
        ProDepth, the returned 1/4 skip map stays the pre-matching ``features[-1]``.

        Args:
            features: :attr:`MatchResult.features`.
            cost: (B, D, h, w) the volume to feed (ManyDepth: confidence-masked; ProDepth: PCVM).
        """
        target = features[-1]
        if cost.ndim != 4 or cost.shape[0] != target.shape[0] or cost.shape[1] != self.num_bins \
                or cost.shape[-2:] != target.shape[-2:]:
            raise ValueError(f'MatchingEncoder.fuse: cost must be (B, {self.num_bins}, h, w) = '
                             f'({target.shape[0]}, {self.num_bins}, '
                             f'{target.shape[2]}, {target.shape[3]}), got {tuple(cost.shape)}')
        fused = self.reduce_conv(torch.cat([target, cost.to(target.dtype)], 1))
        return list(self.encoder.encode_after_matching(features, fused=fused))

    def forward(self, image: Tensor, lookup_images: Tensor, poses: Tensor, K: Tensor,
                inv_K: Tensor | None = None) -> tuple[list[Tensor], MatchResult]:
        """ManyDepth: :meth:`match`, then :meth:`fuse` with ``cost * confidence``.

        Returns:
            the encoder's feature list and the :class:`MatchResult`.
        """
        m = self.match(image, lookup_images, poses, K, inv_K)
        return self.fuse(m.features, m.cost.cost * m.cost.confidence), m


def _shape(t: object) -> object:
    return tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
