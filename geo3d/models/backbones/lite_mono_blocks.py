"""Building blocks of the Lite-Mono encoder (:mod:`geo3d.models.backbones.lite_mono`).

Zhang et al., "Lite-Mono: A Lightweight CNN and Transformer Architecture for Self-Supervised
Monocular Depth Estimation", CVPR 2023 (`noahzn/Lite-Mono`, ``networks/depth_encoder.py``).
Written from the paper and that file; the attribute names are Lite-Mono's so its state dicts
load unchanged (``conv``, ``bn_gelu.bn``, ``ddwconv.conv``, ``bn1``, ``norm``, ``pwconv1``,
``pwconv2``, ``gamma``, ``pos_embd.token_projection``, ``norm_xca``, ``gamma_xca``, ``xca.*``).

* :class:`StemConv` -- 3x3 conv (no bias), optionally BatchNorm + GELU (Lite-Mono's ``Conv``).
* :class:`DilatedConvBlock` -- one layer of the "consecutive dilated convolutions" (CDC)
  module: dilated depth-wise 3x3 conv -> BatchNorm -> point-wise inverted bottleneck
  (Linear, GELU, Linear) -> layer scale -> drop path -> residual.
* :class:`LGFIBlock` -- "local-global features interaction": (optional Fourier positional
  encoding) -> cross-covariance attention (XCA, El-Nouby et al., "XCiT", NeurIPS 2021) with
  layer scale -> LayerNorm -> inverted bottleneck -> layer scale -> drop path -> residual.
  XCA and the positional encoding are timm's XCiT modules (``timm.models.xcit``), whose
  parameter names and maths are the ones Lite-Mono copied from XCiT.
"""
from __future__ import annotations

import torch
from timm.layers import DropPath
from timm.models.xcit import XCA, PositionalEncodingFourier
from torch import Tensor, nn


class BatchNormGELU(nn.Module):
    """BatchNorm2d followed by GELU; ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=1e-5)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(x))


class StemConv(nn.Module):
    """A bias-free 3x3 conv, optionally followed by BatchNorm + GELU.

    ``(B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride))`` (padding 1).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 bn_act: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                              bias=False)
        self.bn_gelu = BatchNormGELU(out_channels) if bn_act else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.bn_gelu is None else self.bn_gelu(x)


class DilatedDepthwiseConv(nn.Module):
    """Depth-wise 3x3 conv with dilation ``d`` and 'same' padding ``d`` (no bias)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation,
                              groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class UnusedLayerNormSlot(nn.Module):
    """Holds the ``weight``/``bias`` of a LayerNorm that Lite-Mono creates but never calls.

    Lite-Mono's ``DilatedConv`` defines ``self.norm`` and skips it in ``forward``; its state
    dicts therefore carry ``norm.weight``/``norm.bias``. Keeping them as (persistent) buffers
    keeps the state-dict keys while leaving no parameter without a gradient (which DDP would
    reject unless ``find_unused_parameters=True``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer('weight', torch.ones(channels))
        self.register_buffer('bias', torch.zeros(channels))


def _layer_scale(dim: int, init_value: float) -> nn.Parameter | None:
    return nn.Parameter(init_value * torch.ones(dim)) if init_value > 0 else None


class DilatedConvBlock(nn.Module):
    """One dilated-convolution layer of Lite-Mono's CDC module; ``(B, C, H, W) -> same``.

    ``y = x + drop_path(gamma * W2 gelu(W1 bn(dwconv_d(x))))`` with ``W1: C -> r C`` and
    ``W2: r C -> C`` applied per pixel (``r = expan_ratio``).

    Args:
        dim: channels C.
        dilation: dilation rate d of the depth-wise 3x3 conv.
        drop_path: stochastic-depth probability of the residual branch (timm's DropPath).
        layer_scale_init_value: initial value of the per-channel scale ``gamma``; 0 = none.
        expan_ratio: r.
    """

    def __init__(self, dim: int, dilation: int = 1, drop_path: float = 0.,
                 layer_scale_init_value: float = 1e-6, expan_ratio: int = 6) -> None:
        super().__init__()
        self.ddwconv = DilatedDepthwiseConv(dim, dilation)
        self.bn1 = nn.BatchNorm2d(dim)
        self.norm = UnusedLayerNormSlot(dim)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = _layer_scale(dim, layer_scale_init_value)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.bn1(self.ddwconv(x))
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = self.pwconv2(self.act(self.pwconv1(x)))
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        return shortcut + self.drop_path(x)


class LGFIBlock(nn.Module):
    """Lite-Mono's local-global features interaction block; ``(B, C, H, W) -> same``.

    With tokens ``t = x`` flattened to ``(B, H W, C)`` (plus the Fourier positional encoding
    when ``use_pos_emb``)::

        t = t + gamma_xca * XCA(LN_xca(t))
        y = x + drop_path(gamma * W2 gelu(W1 LN(t)))

    (as in Lite-Mono, the attention branch reaches the output only through the bottleneck;
    the outer residual adds the block input ``x``). XCA attends over channels: per head,
    ``softmax(tau * q_hat^T k_hat) v`` with ``q_hat, k_hat`` L2-normalised along the tokens.

    Args:
        dim: channels C (divisible by ``num_heads``).
        drop_path: stochastic-depth probability of the bottleneck branch.
        layer_scale_init_value: initial ``gamma_xca`` and ``gamma``; 0 = none.
        expan_ratio: bottleneck expansion r.
        use_pos_emb: add timm's ``PositionalEncodingFourier`` (32 sine/cosine pairs -> 1x1
            conv to C) to the tokens.
        num_heads: XCA heads.
        qkv_bias: bias of XCA's query/key/value projection.
        attn_drop, drop: dropout on the attention map / after XCA's output projection.
    """

    def __init__(self, dim: int, drop_path: float = 0., layer_scale_init_value: float = 1e-6,
                 expan_ratio: int = 6, use_pos_emb: bool = True, num_heads: int = 6,
                 qkv_bias: bool = True, attn_drop: float = 0., drop: float = 0.) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'LGFIBlock: dim {dim} is not divisible by num_heads {num_heads}')
        self.dim = dim
        self.pos_embd = PositionalEncodingFourier(dim=dim) if use_pos_emb else None
        self.norm_xca = nn.LayerNorm(dim, eps=1e-6)
        self.gamma_xca = _layer_scale(dim, layer_scale_init_value)
        self.xca = XCA(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                       proj_drop=drop)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = _layer_scale(dim, layer_scale_init_value)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        b, c, h, w = x.shape
        t = x.reshape(b, c, h * w).permute(0, 2, 1)  # (B, N, C)
        if self.pos_embd is not None:
            t = t + self.pos_embd(b, h, w).reshape(b, -1, h * w).permute(0, 2, 1)
        a = self.xca(self.norm_xca(t))
        t = t + (a if self.gamma_xca is None else self.gamma_xca * a)
        t = t.reshape(b, h, w, c)
        t = self.pwconv2(self.act(self.pwconv1(self.norm(t))))
        if self.gamma is not None:
            t = self.gamma * t
        t = t.permute(0, 3, 1, 2)  # (B, C, H, W)
        return shortcut + self.drop_path(t)
