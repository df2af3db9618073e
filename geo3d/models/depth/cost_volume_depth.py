"""ProDepth's auxiliary network: a depth map from the raw cost volume.

Woo et al., "ProDepth: Boosting Self-Supervised Multi-Frame Monocular Depth with Probabilistic
Fusion", ECCV 2024 (github.com/Sungmin-Woo/ProDepth, ``LiteCVEncoder`` + ``cv_decoder`` in
``networks/resnet_encoder.py``). The paper's "auxiliary decoder that analyses inconsistencies in
the cost volume" is, in the released code, a second encoder that continues from the multi-frame
encoder's (detached) 1/4-resolution features fused with the *raw* cost volume (0 where no source
gave a sample)::

    x     = ConvELU(cat[F_0.detach(), raw_cost])     # C + D -> C (ProDepth's ``up0``)
    feats = encoder.encode_after_matching(feats_0.detached() with F_0 := x)
    disp  = DepthDecoder(feats)                       # sigmoid disparity, scale 0 used

Its depth is compared with the single-frame teacher's to get the static probability ``W``
(:func:`~geo3d.models.depth.pcvm.static_probability`). It is trained by its own photometric loss
(scale 0, minimum over sources, zero on matching-augmented samples, weight 0.3 in ProDepth).
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor

from geo3d.registry import MODELS

from .decoders import ConvELU

__all__ = ['CostVolumeDepthNet']


@MODELS.register_module()
class CostVolumeDepthNet(BaseModule):
    """Depth from the raw cost volume and detached matching features (ProDepth's auxiliary net).

    Args:
        encoder: an encoder with the split API (the same type as the multi-frame encoder's;
            only its stages after the matching level are used, the earlier ones stay unused);
            its ``pretrained`` is loaded by :meth:`init_weights`.
        num_bins: depth bins D of the cost volume.
        decoder: :class:`~geo3d.models.depth.DepthDecoder` config (``num_ch_enc`` filled in;
            default ``scales=(0,)``).
        init_cfg: mmengine init config.

    Submodules: ``encoder``, ``fuse`` (:class:`ConvELU`, C + D -> C), ``decoder``.
    """

    def __init__(self, encoder: dict | None = None, num_bins: int = 96,
                 decoder: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        enc = dict(encoder or dict(type='DepthResNetEncoder', num_layers=18))
        self._pretrained = enc.pop('pretrained', None)  # loaded by init_weights()
        self.encoder = MODELS.build(enc)
        if not hasattr(self.encoder, 'encode_after_matching'):
            raise TypeError(f'CostVolumeDepthNet: encoder {type(self.encoder).__name__} has no '
                            f'encode_after_matching (the split API is needed)')
        num_ch_enc = tuple(int(c) for c in self.encoder.num_ch_enc)
        self.matching_channels = int(getattr(self.encoder, 'matching_channels', num_ch_enc[1]))
        self.num_bins = int(num_bins)
        self.fuse = ConvELU(self.matching_channels + self.num_bins, self.matching_channels)
        dec = dict(type='DepthDecoder', scales=(0,))
        dec.update(dict(decoder or {}))
        dec['num_ch_enc'] = num_ch_enc
        self.decoder = MODELS.build(dec)

    def init_weights(self) -> None:
        """mmengine's initialisation, then the encoder's ``pretrained`` weights (ProDepth
        starts its cost-volume encoder from ImageNet Lite-Mono-8M)."""
        super().init_weights()
        if self._pretrained:
            self.encoder.load_imagenet(None if self._pretrained is True else self._pretrained)

    def forward(self, features: Sequence[Tensor], raw_cost: Tensor) -> dict[int, Tensor]:
        """Matching features + raw volume -> ``{s: (B, 1, H / 2**s, W / 2**s)}`` sigmoids.

        Args:
            features: the multi-frame encoder's ``encode_until_matching`` output (detached
                here; no gradient reaches the multi-frame encoder).
            raw_cost: (B, D, h, w) raw cost volume at the matching level (detached).
        """
        target = features[-1]
        if raw_cost.ndim != 4 or raw_cost.shape[0] != target.shape[0] \
                or raw_cost.shape[1] != self.num_bins or raw_cost.shape[-2:] != target.shape[-2:]:
            raise ValueError(f'CostVolumeDepthNet: raw_cost must be (B, {self.num_bins}, h, w) = '
                             f'({target.shape[0]}, {self.num_bins}, {target.shape[2]}, '
                             f'{target.shape[3]}), got {tuple(raw_cost.shape)}')
        detach = getattr(features, 'detached', None)
        feats = detach() if callable(detach) else [f.detach() for f in features]
        feats[-1] = self.fuse(torch.cat([feats[-1], raw_cost.detach().to(target.dtype)], 1))
        return self.decoder(self.encoder.encode_after_matching(feats))
