"""Lite-Mono encoder (CNN + cross-covariance attention), the backbone of ProDepth.

Zhang et al., "Lite-Mono: A Lightweight CNN and Transformer Architecture for Self-Supervised
Monocular Depth Estimation", CVPR 2023 (`noahzn/Lite-Mono`, ``networks/depth_encoder.py``),
with the 4-level feature list and the stage split of ProDepth (Woo et al., ECCV 2024,
`Sungmin-Woo/ProDepth`, ``networks/depth_encoder.py``). Own implementation; the module and
parameter names are Lite-Mono's, so its published encoder weights (ImageNet and KITTI) load
with ``load_state_dict(strict=True)``.

Architecture (input ``x`` in [0, 1], normalised inside as ``(x - 0.45) / 0.225``; ``P_k`` =
``x`` average-pooled ``k`` times with 3x3 windows, stride 2, padding 1; ``d0, d1, d2`` = the
variant's ``dims``)::

    f_stem = downsample_layers[0](x)                       # 3 convs+BN+GELU  d0 @ 1/2
    s0     = stem2(cat[f_stem, P_1])                        # conv stride 2    d0 @ 1/4
    f0     = stages[0](s0)                                  # CDC blocks + LGFI d0 @ 1/4
    s1     = downsample_layers[1](cat[s0, f0', P_2])        #                   d1 @ 1/8
    f1     = stages[1](s1)
    f2     = stages[2](downsample_layers[2](cat[s1, f1, P_3]))  #               d2 @ 1/16

``f0'`` is ``f0`` in a plain forward; in ProDepth's multi-frame encoder it is the stage-0
feature fused with the cost volume (see :meth:`LiteMonoEncoder.encode_after_matching`). Each
stage is ``depth - 1`` :class:`DilatedConvBlock` (dilations per variant) then one
:class:`LGFIBlock` (positional encoding in stage 0 only); drop-path rates grow linearly from 0
to ``drop_path_rate`` over all blocks.

Feature list (``with_stem_feature=True``, ProDepth's ``LiteMono`` and the default here)::

    [f_stem (d0 @ 1/2), f0 (d0 @ 1/4), f1 (d1 @ 1/8), f2 (d2 @ 1/16)],  num_ch_enc = (d0, d0, d1, d2)

With ``with_stem_feature=False`` the list is Lite-Mono's own ``[f0, f1, f2]`` (``num_ch_enc =
dims``, used by Lite-Mono's 3-scale depth decoder). Spatial sizes are ``ceil`` halvings of the
input (any H, W).

Variants (``depths`` blocks per stage, the last one LGFI; ``dilations`` of the CDC blocks at
640x192 / at 1024x320)::

    lite-mono        dims (48, 80, 128)  depths (4, 4, 10)  [1,2,3] [1,2,3] [1,2,3,1,2,3,2,4,6]
                                                            / 3 replaced by 5, 6 by 10
    lite-mono-small  dims (48, 80, 128)  depths (4, 4, 7)   [1,2,3] [1,2,3] [1,2,3,2,4,6] / idem
    lite-mono-tiny   dims (32, 64, 128)  depths (4, 4, 7)   as lite-mono-small
    lite-mono-8m     dims (64, 128, 224) depths (4, 4, 10)  as lite-mono at 640x192, both sizes

Lite-Mono only defines the dilations for (H, W) = (192, 640) and (320, 1024); here (320, 1024)
selects the second set and every other size the first.

Parameters: Lite-Mono's CDC blocks create a LayerNorm they never use; its ``norm.weight`` /
``norm.bias`` are buffers here (same state-dict keys, no parameter without a gradient), so
``parameters()`` counts ``2 C`` fewer per CDC block than the reference (lite-mono-8m: 8,134,776
trainable + 5,184 buffer = Lite-Mono's 8,139,960; its README's "8.7M" adds the depth decoder).

Verified against the reference code (not part of geo3d; done once, by hand, see the tests'
docstring): Lite-Mono's ``LiteMono`` (commit 4874b35) for the four variants at both
resolutions and ProDepth's ``LiteMono`` (commit 1519603, 8m) with random weights copied over
by ``load_state_dict(strict=True)`` give identical state-dict keys/shapes and bit-identical
features.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

from .lite_mono_blocks import (DilatedConvBlock, LGFIBlock, StemConv,
                               UnusedLayerNormSlot)

#: Lite-Mono's input normalisation (one mean/std for all channels, as Monodepth2).
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225

_DIL_10 = ((1, 2, 3), (1, 2, 3), (1, 2, 3, 1, 2, 3, 2, 4, 6))
_DIL_10_HI = ((1, 2, 5), (1, 2, 5), (1, 2, 5, 1, 2, 5, 2, 4, 10))
_DIL_7 = ((1, 2, 3), (1, 2, 3), (1, 2, 3, 2, 4, 6))
_DIL_7_HI = ((1, 2, 5), (1, 2, 5), (1, 2, 5, 2, 4, 10))

#: variant -> (dims, depths, dilations at 640x192, dilations at 1024x320).
LITE_MONO_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...],
                                    tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]] = {
    'lite-mono': ((48, 80, 128), (4, 4, 10), _DIL_10, _DIL_10_HI),
    'lite-mono-small': ((48, 80, 128), (4, 4, 7), _DIL_7, _DIL_7_HI),
    'lite-mono-tiny': ((32, 64, 128), (4, 4, 7), _DIL_7, _DIL_7_HI),
    'lite-mono-8m': ((64, 128, 224), (4, 4, 10), _DIL_10, _DIL_10),
}

#: Keys of a Lite-Mono ImageNet pre-training checkpoint's ``model`` dict that are the
#: classifier (dropped when loading into the encoder, as Lite-Mono's trainer does).
_CLASSIFIER_PREFIXES = ('norm.', 'head.')
#: Non-tensor metadata Lite-Mono / ProDepth store in their KITTI ``encoder.pth``.
_METADATA_KEYS = ('height', 'width', 'use_stereo', 'min_depth_bin', 'max_depth_bin')


class LiteMonoFeatures(list):
    """The feature list of :meth:`LiteMonoEncoder.encode_until_matching`.

    A plain ``list`` of Tensors (``[f_stem, f0]``, or ``[f0]`` without the stem feature) that
    also carries what the later stages need besides ``f0``:

    * ``stage0_input`` -- ``s0``, the stem's 1/4-resolution output fed to stage 0, (B, d0, H/4, W/4);
    * ``pyramid`` -- the normalised input average-pooled to 1/4 and 1/8, ((B, 3, H/4, W/4),
      (B, 3, H/8, W/8)).

    Replacing an element (``feats[-1] = fused``) keeps them; ``list(feats)`` or slicing drops
    them (:meth:`LiteMonoEncoder.encode_after_matching` then says so). :meth:`detached`
    gives a copy cut from the autograd graph.
    """

    def __init__(self, features: Sequence[Tensor], stage0_input: Tensor,
                 pyramid: tuple[Tensor, Tensor]) -> None:
        super().__init__(features)
        self.stage0_input = stage0_input
        self.pyramid = pyramid

    def detached(self) -> 'LiteMonoFeatures':
        """A copy whose tensors (features, ``stage0_input``, ``pyramid``) are detached."""
        return LiteMonoFeatures([f.detach() for f in self], self.stage0_input.detach(),
                                (self.pyramid[0].detach(), self.pyramid[1].detach()))


def read_lite_mono_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The encoder state dict in a Lite-Mono / ProDepth weights file (read weights-only).

    Accepted layouts: a plain encoder state dict; Lite-Mono's KITTI ``encoder.pth`` (the
    state dict plus metadata ``height``/``width``, dropped); Lite-Mono's ImageNet pre-training
    checkpoint ``{'model': {...}, 'optimizer': ..., 'args': Namespace, ...}`` (``model`` taken,
    its classifier ``norm.*``/``head.*`` dropped, as Lite-Mono's trainer does); a
    ``{'state_dict': {...}}`` wrapper. ``argparse.Namespace`` is allowed in the weights-only
    unpickler (the pre-training checkpoints store their arguments as one).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: the file cannot be read weights-only or holds no tensor state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Lite-Mono weights {path} do not exist')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj: Any = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unreadable file gets the same message)
        raise RuntimeError(
            f'{path}: not readable as a weights-only torch file ({type(err).__name__}: {err}). '
            f'If it is a trusted training checkpoint, extract the state dict first, e.g. '
            f"torch.save(torch.load(p, weights_only=False)['model'], 'encoder.pth')") from err
    drop: tuple[str, ...] = ()
    if isinstance(obj, Mapping) and isinstance(obj.get('model'), Mapping):
        obj, drop = obj['model'], _CLASSIFIER_PREFIXES
    elif isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping):
        raise RuntimeError(f'{path}: expected a state dict, got {type(obj).__name__}')
    sd: dict[str, Tensor] = {}
    for k, v in obj.items():
        if (k in _METADATA_KEYS and not isinstance(v, Tensor)) or k.startswith(drop):
            continue
        if not isinstance(v, Tensor):
            raise RuntimeError(f'{path}: entry {k!r} is a {type(v).__name__}, not a tensor')
        sd[k] = v
    if not sd:
        raise RuntimeError(f'{path}: holds no tensors')
    return sd


@MODELS.register_module()
class LiteMonoEncoder(BaseModule):
    """Lite-Mono encoder: image (B, 3, H, W) in [0, 1] -> multi-scale features.

    Args:
        variant: 'lite-mono', 'lite-mono-small', 'lite-mono-tiny' or 'lite-mono-8m'.
        height, width: training resolution; selects Lite-Mono's dilation set
            ((320, 1024) -> the 1024x320 set, otherwise the 640x192 set). Inputs of any size
            are accepted.
        in_chans: input channels.
        drop_path_rate: largest stochastic-depth rate (Lite-Mono 0.2, ProDepth 0.4).
        layer_scale_init_value: initial layer scale of every block (0 disables it).
        expan_ratio: inverted-bottleneck expansion.
        heads: XCA heads of the LGFI block per stage.
        use_pos_embd_xca: Fourier positional encoding in each stage's LGFI block.
        global_blocks: LGFI blocks at the end of each stage (Lite-Mono: 1 each).
        with_stem_feature: prepend the 1/2-resolution stem feature to the output (ProDepth's
            4-level list; default) or return Lite-Mono's 3-level list.
        pretrained: path to Lite-Mono weights (see :func:`read_lite_mono_state_dict`), loaded
            strictly; None/False for random init. (``True`` is refused: the published files
            must be downloaded by hand.)
        init_cfg: mmengine init config, usually None.

    Attributes:
        num_ch_enc: channels of the returned features.
        feature_strides: their strides w.r.t. the input.
        matching_channels: channels of the stage-0 feature (d0) where a multi-frame model
            builds / injects its cost volume (1/4 resolution).
    """

    def __init__(self, variant: str = 'lite-mono', height: int = 192, width: int = 640,
                 in_chans: int = 3, drop_path_rate: float = 0.2,
                 layer_scale_init_value: float = 1e-6, expan_ratio: int = 6,
                 heads: Sequence[int] = (8, 8, 8),
                 use_pos_embd_xca: Sequence[bool] = (True, False, False),
                 global_blocks: Sequence[int] = (1, 1, 1), with_stem_feature: bool = True,
                 pretrained: str | os.PathLike[str] | bool | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if variant not in LITE_MONO_VARIANTS:
            raise ValueError(f'LiteMonoEncoder: unknown variant {variant!r}; expected one of '
                             f'{sorted(LITE_MONO_VARIANTS)}')
        dims, depths, dil_lo, dil_hi = LITE_MONO_VARIANTS[variant]
        dilations = dil_hi if (height, width) == (320, 1024) else dil_lo
        for name, seq in (('heads', heads), ('use_pos_embd_xca', use_pos_embd_xca),
                          ('global_blocks', global_blocks)):
            if len(seq) != 3:
                raise ValueError(f'LiteMonoEncoder: {name} needs one entry per stage (3), '
                                 f'got {list(seq)}')
        for i in range(3):
            if not 0 <= global_blocks[i] <= depths[i] \
                    or len(dilations[i]) < depths[i] - global_blocks[i]:
                raise ValueError(f'LiteMonoEncoder: global_blocks[{i}]={global_blocks[i]} '
                                 f'leaves {depths[i] - global_blocks[i]} dilated-conv blocks in '
                                 f'stage {i}, but {variant} defines {len(dilations[i])} '
                                 f'dilations there')
        self.variant = variant
        self.in_chans = in_chans
        self.dims = tuple(dims)
        self.depths = tuple(depths)
        self.dilations = dilations
        self.with_stem_feature = bool(with_stem_feature)
        d0, d1, d2 = dims
        self.num_ch_enc: tuple[int, ...] = (d0, d0, d1, d2) if with_stem_feature else (d0, d1, d2)
        self.feature_strides: tuple[int, ...] = (2, 4, 8, 16) if with_stem_feature else (4, 8, 16)
        self.matching_channels: int = d0

        self.downsample_layers = nn.ModuleList([nn.Sequential(
            StemConv(in_chans, d0, stride=2, bn_act=True),
            StemConv(d0, d0, stride=1, bn_act=True),
            StemConv(d0, d0, stride=1, bn_act=True))])
        self.stem2 = nn.Sequential(StemConv(d0 + 3, d0, stride=2, bn_act=False))
        for i in range(2):
            self.downsample_layers.append(nn.Sequential(
                StemConv(2 * dims[i] + 3, dims[i + 1], stride=2, bn_act=False)))

        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        cur = 0
        for i in range(3):
            blocks: list[nn.Module] = []
            n_cdc = depths[i] - global_blocks[i]
            for j in range(depths[i]):
                if j < n_cdc:
                    blocks.append(DilatedConvBlock(
                        dims[i], dilation=dilations[i][j], drop_path=rates[cur + j],
                        layer_scale_init_value=layer_scale_init_value, expan_ratio=expan_ratio))
                else:
                    blocks.append(LGFIBlock(
                        dims[i], drop_path=rates[cur + j],
                        layer_scale_init_value=layer_scale_init_value, expan_ratio=expan_ratio,
                        use_pos_emb=bool(use_pos_embd_xca[i]), num_heads=heads[i]))
            self.stages.append(nn.Sequential(*blocks))
            cur += depths[i]
        self.apply(self._lite_mono_init)
        if pretrained is True:
            self.load_imagenet(None)
        elif pretrained:
            self.load_pretrained(pretrained)

    @staticmethod
    def _lite_mono_init(m: nn.Module) -> None:
        """Lite-Mono's init: Kaiming-normal (fan-out, ReLU gain) conv/linear weights (biases
        keep PyTorch's default), unit/zero LayerNorm and BatchNorm affine parameters."""
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, UnusedLayerNormSlot):
            m.weight.fill_(1.0)
            m.bias.fill_(0.0)

    # ------------------------------------------------------------------ weights
    def load_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Load a Lite-Mono encoder weights file strictly (:func:`read_lite_mono_state_dict`).

        Raises:
            FileNotFoundError: no such file.
            RuntimeError: unreadable, or its keys/shapes are not this variant's; the message
                names the file, the missing and the unexpected keys and the shape mismatches.
        """
        sd = read_lite_mono_state_dict(path)
        own = self.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        wrong = [f'{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}'
                 for k, v in own.items() if k in sd and sd[k].shape != v.shape]
        if missing or unexpected or wrong:
            def show(items: list[str]) -> str:
                return (', '.join(items[:6]) + (f' ... ({len(items)} in all)'
                                                if len(items) > 6 else '')) or 'none'
            raise RuntimeError(
                f'{os.fspath(path)}: not a {self.variant} encoder state dict '
                f'(dims {self.dims}, depths {self.depths}); missing keys: {show(missing)}; '
                f'unexpected keys: {show(unexpected)}; shape mismatches: {show(wrong)}')
        self.load_state_dict(sd, strict=True)

    def load_imagenet(self, path: str | os.PathLike[str] | None = None) -> None:
        """MonoDepth's hook for ImageNet weights: ``path`` as :meth:`load_pretrained`.

        Lite-Mono's ImageNet weights (e.g. ``lite-mono-8m-pretrain.pth``) are linked from
        its README (github.com/noahzn/Lite-Mono) and cannot be fetched automatically, so
        ``None`` raises.
        """
        if path is None:
            raise RuntimeError(
                f'LiteMonoEncoder({self.variant!r}): pretrained=True needs a file; download '
                f"the ImageNet weights linked in Lite-Mono's README (github.com/noahzn/"
                f'Lite-Mono, e.g. {self.variant}-pretrain.pth) and pass pretrained=<path>')
        self.load_pretrained(path)

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f'LiteMonoEncoder expects images (B, {self.in_chans}, H, W) in '
                             f'[0, 1], got {shape}')

    def encode_until_matching(self, x: Tensor) -> LiteMonoFeatures:
        """Stem and stage 0: (B, 3, H, W) in [0, 1] -> ``[f_stem, f0]`` (or ``[f0]``).

        The last element ``f0`` (B, ``matching_channels``, ceil(H/4), ceil(W/4)) is the
        feature a multi-frame model matches across frames (ProDepth's ``forward_features``).
        The returned :class:`LiteMonoFeatures` also carries the stage-0 input and the image
        pyramid needed by :meth:`encode_after_matching`.
        """
        self._check_input(x)
        x = (x - IMAGE_MEAN) / IMAGE_STD
        p1 = F.avg_pool2d(x, 3, stride=2, padding=1)
        p2 = F.avg_pool2d(p1, 3, stride=2, padding=1)
        p3 = F.avg_pool2d(p2, 3, stride=2, padding=1)
        f_stem = self.downsample_layers[0](x)
        s0 = self.stem2(torch.cat((f_stem, p1), dim=1))
        f0 = self.stages[0](s0)
        feats = [f_stem, f0] if self.with_stem_feature else [f0]
        return LiteMonoFeatures(feats, s0, (p2, p3))

    def encode_after_matching(self, feats: LiteMonoFeatures,
                              fused: Tensor | None = None) -> list[Tensor]:
        """Stages 1-2 after :meth:`encode_until_matching`; returns the full feature list.

        Args:
            feats: the :class:`LiteMonoFeatures` returned by :meth:`encode_until_matching`,
                possibly with its last element replaced (e.g. ProDepth's auxiliary cost-volume
                encoder sets ``feats[-1]`` to the fused feature, which is then also the
                returned 1/4 skip feature).
            fused: optional (B, ``matching_channels``, H/4, W/4) feature that stage 1 consumes
                instead of ``feats[-1]`` while the returned list keeps ``feats[-1]``
                (ProDepth's / ManyDepth's multi-frame encoder: ``reduce_conv`` output goes
                deeper, the skip connection stays the pre-matching feature).

        Returns:
            ``[*feats, f1 (B, d1, H/8, W/8), f2 (B, d2, H/16, W/16)]`` as a plain list; equals
            ``forward(x)`` for ``feats = encode_until_matching(x)`` and ``fused=None``.
        """
        n = 2 if self.with_stem_feature else 1
        if not isinstance(feats, LiteMonoFeatures) or len(feats) != n:
            raise ValueError(
                f'LiteMonoEncoder.encode_after_matching needs the LiteMonoFeatures returned by '
                f'encode_until_matching ({n} tensor(s) plus the stage-0 input and image '
                f'pyramid), got a {type(feats).__name__} of {len(feats)} element(s); replace '
                f'its last element in place or pass fused=, do not copy it with list()/slicing')
        f0 = feats[-1] if fused is None else fused
        if f0.shape != feats.stage0_input.shape:
            raise ValueError(f'LiteMonoEncoder.encode_after_matching: the stage-0 feature '
                             f'must be {tuple(feats.stage0_input.shape)}, got {tuple(f0.shape)}')
        out = list(feats)
        skip = feats.stage0_input
        for i, pooled in zip((1, 2), feats.pyramid):
            s = self.downsample_layers[i](torch.cat((skip, f0, pooled), dim=1))
            f0 = self.stages[i](s)
            skip = s
            out.append(f0)
        return out

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> features, see the module docstring.

        ``with_stem_feature``: ``[(B, d0, H/2, W/2), (B, d0, H/4, W/4), (B, d1, H/8, W/8),
        (B, d2, H/16, W/16)]`` (ceil halvings); otherwise the last three.
        """
        return self.encode_after_matching(self.encode_until_matching(x))
