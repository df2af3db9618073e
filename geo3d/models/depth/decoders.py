"""Monodepth2's depth decoder and pose decoder.

Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(`nianticlabs/monodepth2`, ``networks/depth_decoder.py`` and ``networks/pose_decoder.py``; ManyDepth
uses the same two networks).

:class:`DepthDecoder`, a U-Net decoder over the 5 encoder maps, for level ``i = 4 .. 0``::

    x = ConvBlock(x)                        # upconv0[i]: c_in -> dec[i]
    x = nearest_upsample_x2(x)
    x = cat([x, features[i - 1]]) if i > 0  # skip connection
    x = ConvBlock(x)                        # upconv1[i]: dec[i] (+ enc[i-1]) -> dec[i]
    disp[i] = sigmoid(Conv3x3(x))           # for i in scales; (B, C_out, H / 2^i, W / 2^i)

with ``ConvBlock = reflection pad 1 + 3x3 conv + ELU``, ``Conv3x3 = reflection pad 1 + 3x3 conv``,
decoder channels ``dec = (16, 32, 64, 128, 256)`` and ``c_in = enc[4]`` at i = 4, else
``dec[i + 1]``. The sigmoid output is a *normalised* disparity in (0, 1); Monodepth2 maps it
to depth with ``disp_to_depth(sigma, 0.1, 100)`` (``geo3d.structures.camera``).

:class:`PoseDecoder`: per input feature set a ReLU'd 1x1 "squeeze" conv (enc[4] -> 256) of the
last encoder map, concatenated, then 3x3 conv + ReLU, 3x3 conv + ReLU, 1x1 conv to
``6 * num_frames_to_predict_for``, mean over space, times 0.01, split into axis-angle (first 3)
and translation (last 3). Monodepth2's "separate_resnet" pose net uses ``num_input_features=1``
on a 2-frame encoder and ``num_frames_to_predict_for=2`` (only the first prediction is used).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

#: Monodepth2's decoder channels per level 0..4.
DECODER_CHANNELS = (16, 32, 64, 128, 256)
#: Monodepth2 scales the pose network's output by this factor.
POSE_SCALE = 0.01


class ReflectConv3x3(nn.Module):
    """Reflection padding 1 + 3x3 conv (bias): (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvELU(ReflectConv3x3):
    """:class:`ReflectConv3x3` followed by ELU (Monodepth2's ``ConvBlock``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(super().forward(x))


@MODELS.register_module()
class DepthDecoder(BaseModule):
    """Monodepth2's U-Net depth decoder: 5 encoder maps -> sigmoid disparities per scale.

    Args:
        num_ch_enc: channels of the 5 encoder maps (``DepthResNetEncoder.num_ch_enc``). Fewer
            levels ``L`` (2..5, level ``i`` at ``H / 2^(i+1)``) give the same decoder over
            levels ``L-1 .. 0``, as ProDepth's decoder over Lite-Mono's 4 maps.
        scales: output scales, subset of 0..L-1 (scale ``s`` has resolution ``H / 2^s``).
        num_output_channels: channels of each output (1 for disparity).
        use_skips: concatenate encoder maps (the U-Net skips).
        decoder_channels: channels per level 0..4.
        init_cfg: mmengine init config, usually None (PyTorch's default conv init, as the
            reference).

    Parameter names: ``upconv0.{i}.conv``, ``upconv1.{i}.conv`` (level i = 0..4) and
    ``disp_heads.{s}.conv`` (scale s).
    """

    def __init__(self, num_ch_enc: Sequence[int] = (64, 64, 128, 256, 512),
                 scales: Sequence[int] = (0, 1, 2, 3), num_output_channels: int = 1,
                 use_skips: bool = True, decoder_channels: Sequence[int] = DECODER_CHANNELS,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_ch_enc = tuple(int(c) for c in num_ch_enc)
        self.num_ch_dec = tuple(int(c) for c in decoder_channels)
        n = self.num_levels = len(self.num_ch_enc)
        if not 2 <= n <= 5 or len(self.num_ch_dec) != 5:
            raise ValueError(f'num_ch_enc needs 2..5 entries (5 for a ResNet) and '
                             f'decoder_channels 5, got {self.num_ch_enc} and {self.num_ch_dec}')
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or any(s not in range(n) for s in self.scales) \
                or len(set(self.scales)) != len(self.scales):
            raise ValueError(f'scales must be distinct values in 0..{n - 1}, got '
                             f'{tuple(scales)}')
        self.num_output_channels = num_output_channels
        self.use_skips = use_skips
        enc, dec = self.num_ch_enc, self.num_ch_dec
        up0, up1 = [], []
        for i in range(n):
            up0.append(ConvELU(enc[n - 1] if i == n - 1 else dec[i + 1], dec[i]))
            up1.append(ConvELU(dec[i] + (enc[i - 1] if use_skips and i > 0 else 0), dec[i]))
        self.upconv0 = nn.ModuleList(up0)
        self.upconv1 = nn.ModuleList(up1)
        self.disp_heads = nn.ModuleDict(
            {str(s): ReflectConv3x3(dec[s], num_output_channels) for s in self.scales})

    def forward(self, features: Sequence[Tensor]) -> dict[int, Tensor]:
        """5 encoder maps (B, enc[i], H / 2^(i+1), W / 2^(i+1)) -> {s: (B, C_out, H/2^s, W/2^s)}.

        Values are in (0, 1) (sigmoid). H and W must be divisible by 32 (each skip map must be
        exactly twice the size of the next coarser one).
        """
        n = self.num_levels
        if len(features) != n:
            raise ValueError(f'DepthDecoder expects {n} encoder maps, got {len(features)}')
        for i, (f, c) in enumerate(zip(features, self.num_ch_enc)):
            if f.dim() != 4 or f.shape[1] != c:
                raise ValueError(f'DepthDecoder: encoder map {i} should be (B, {c}, h, w), '
                                 f'got {tuple(f.shape)}')
        for i in range(n - 1):
            fine, coarse = features[i].shape[-2:], features[i + 1].shape[-2:]
            if fine[0] != 2 * coarse[0] or fine[1] != 2 * coarse[1]:
                raise ValueError(
                    f'DepthDecoder: encoder map {i} is {tuple(fine)} but map {i + 1} is '
                    f'{tuple(coarse)}; the input height and width must be divisible by '
                    f'{2 ** n}')
        if min(features[n - 1].shape[-2:]) < 2:
            raise ValueError(f'DepthDecoder: the coarsest encoder map is '
                             f'{tuple(features[n - 1].shape[-2:])}; reflection padding needs '
                             f'at least 2x2, i.e. an input of at least {2 ** (n + 1)}x'
                             f'{2 ** (n + 1)}')
        out: dict[int, Tensor] = {}
        x = features[n - 1]
        for i in range(n - 1, -1, -1):
            x = F.interpolate(self.upconv0[i](x), scale_factor=2, mode='nearest')
            if self.use_skips and i > 0:
                x = torch.cat([x, features[i - 1]], 1)
            x = self.upconv1[i](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.disp_heads[str(i)](x))
        return out


@MODELS.register_module()
class PoseDecoder(BaseModule):
    """Monodepth2's pose decoder: last encoder map(s) -> axis-angle and translation.

    Args:
        in_channels: channels of the last encoder map (512 for ResNet-18).
        num_input_features: number of encoder feature sets concatenated after squeezing (1 for
            Monodepth2's separate pose encoder on stacked frames).
        num_frames_to_predict_for: poses predicted per sample (Monodepth2 uses 2 and reads the
            first); None means ``num_input_features - 1``.
        stride: stride of the two 3x3 convs.
        init_cfg: mmengine init config, usually None.

    Parameter names: ``squeeze`` (1x1) and ``convs.0`` / ``convs.1`` (3x3) / ``convs.2`` (1x1).
    """

    def __init__(self, in_channels: int = 512, num_input_features: int = 1,
                 num_frames_to_predict_for: int | None = 2, stride: int = 1,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_frames_to_predict_for is None:
            num_frames_to_predict_for = num_input_features - 1
        if num_input_features < 1 or num_frames_to_predict_for < 1:
            raise ValueError(f'num_input_features ({num_input_features}) and '
                             f'num_frames_to_predict_for ({num_frames_to_predict_for}) must be '
                             f'>= 1')
        self.in_channels = in_channels
        self.num_input_features = num_input_features
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.squeeze = nn.Conv2d(in_channels, 256, 1)
        self.convs = nn.ModuleList([
            nn.Conv2d(num_input_features * 256, 256, 3, stride, 1),
            nn.Conv2d(256, 256, 3, stride, 1),
            nn.Conv2d(256, 6 * num_frames_to_predict_for, 1),
        ])

    def forward(self, features: Sequence[Sequence[Tensor]] | Sequence[Tensor]
                ) -> tuple[Tensor, Tensor]:
        """Encoder outputs -> (axisangle, translation), each (B, num_frames, 1, 3).

        ``features`` is one encoder output (a list of maps) per input feature set, of which
        only the last map (B, in_channels, h, w) is used; with ``num_input_features == 1`` a
        single encoder output (a list of tensors) is accepted as well.
        """
        if len(features) and isinstance(features[0], Tensor):
            features = [features]  # type: ignore[list-item]
        if len(features) != self.num_input_features:
            raise ValueError(f'PoseDecoder expects {self.num_input_features} encoder output(s), '
                             f'got {len(features)}')
        last = [f[-1] for f in features]  # type: ignore[index]
        for f in last:
            if f.dim() != 4 or f.shape[1] != self.in_channels:
                raise ValueError(f'PoseDecoder: last encoder map should be '
                                 f'(B, {self.in_channels}, h, w), got {tuple(f.shape)}')
        x = torch.cat([F.relu(self.squeeze(f)) for f in last], 1)
        x = F.relu(self.convs[0](x))
        x = F.relu(self.convs[1](x))
        x = self.convs[2](x).mean(3).mean(2)  # the reference's order (bit-identical results)
        x = POSE_SCALE * x.view(-1, self.num_frames_to_predict_for, 1, 6)
        return x[..., :3], x[..., 3:]
