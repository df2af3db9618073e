"""A narrow 5-level image encoder with the split API, for fast tests of depth models.

Same interface as ``DepthResNetEncoder`` (``num_input_images``, ``num_ch_enc``, maps at
``H / 2**(i+1)``, ``encode_until_matching`` -> the 1/2 and 1/4 maps, ``encode_after_matching(feats,
fused=None)``), with one strided conv + BatchNorm + ReLU per level and a few channels, so a
ManyDepth / ProDepth made of it trains a step in milliseconds. Registered in geo3d's MODELS as
``TinyDepthEncoder`` when this module is imported (tests only).
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from geo3d.registry import MODELS

#: small decoder channels for DepthDecoder in tests
TINY_DECODER_CHANNELS = (4, 8, 8, 16, 16)


@MODELS.register_module(force=True)
class TinyDepthEncoder(nn.Module):
    def __init__(self, num_input_images: int = 1, widths: Sequence[int] = (8, 8, 16, 16, 32),
                 pretrained: bool = False, num_layers: int | None = None) -> None:
        super().__init__()
        self.num_input_images = num_input_images
        self.num_ch_enc = tuple(widths)
        layers, c_in = [], 3 * num_input_images
        for c in widths:
            layers.append(nn.Sequential(nn.Conv2d(c_in, c, 3, 2, 1, bias=False),
                                        nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            c_in = c
        self.levels = nn.ModuleList(layers)

    def encode_until_matching(self, x: Tensor) -> list[Tensor]:
        f0 = self.levels[0](x - 0.45)
        return [f0, self.levels[1](f0)]

    def encode_after_matching(self, feats: Sequence[Tensor], fused: Tensor | None = None
                              ) -> list[Tensor]:
        out, x = list(feats), feats[-1] if fused is None else fused
        for level in self.levels[2:]:
            x = level(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.encode_after_matching(self.encode_until_matching(x))

    def load_imagenet(self, path: str | None = None) -> None:  # MonoDepth's hook
        raise RuntimeError('TinyDepthEncoder has no ImageNet weights')
