"""Image branch of Gaussian2Scene stage 1: a masked autoencoder (MAE) on RGB-D frames.

Follows MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022,
github.com/facebookresearch/mae) as PiMAE's image branch does (Chen et al., CVPR 2023,
github.com/BLVLab/PiMAE): the frame is cut into ``p x p`` patches, a random ``mask_ratio`` of
them is dropped, a ViT encoder (timm's ``PatchEmbed`` and ``Block``) sees the visible patches
only, a light decoder fills the sequence with a learnable mask token and predicts every
patch's pixels, and the loss is the MSE on the MASKED patches against per-patch normalised
pixels (MAE's ``norm_pix_loss``). Gaussian2Scene (Liu et al., arXiv 2506.08777) publishes no
code; the RGB-D input (a depth channel next to RGB) and the depth reconstruction term are this
implementation's choices (both options, see :class:`ImageMAE`).

Patch layout is MAE's: patch ``l = i * W_p + j`` (row-major over the ``H_p x W_p`` patch grid)
and a patch's pixels are flattened as ``(p, p, C)`` (row, column, channel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from mmengine.model import BaseModule
from timm.layers import PatchEmbed, build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['patchify', 'unpatchify', 'random_token_mask', 'normalize_patches',
           'encode_depth', 'MAEViTEncoder', 'MAEDecoder', 'ImageMAE', 'ImageMAEOutput',
           'DepthInput']

DepthInput = Literal['inverse', 'depth', 'none']
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- patch helpers
def patchify(x: Tensor, patch: int) -> Tensor:
    """(N, C, H, W) -> (N, L, p*p*C) with ``L = (H/p) (W/p)``, MAE's ``(p, q, c)`` order."""
    n, c, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError(f'image size {h}x{w} is not a multiple of the patch size {patch}')
    hp, wp = h // patch, w // patch
    x = x.reshape(n, c, hp, patch, wp, patch)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(n, hp * wp, patch * patch * c)


def unpatchify(x: Tensor, patch: int, grid: Sequence[int], channels: int) -> Tensor:
    """Inverse of :func:`patchify`: (N, L, p*p*C) -> (N, C, H_p p, W_p p)."""
    hp, wp = int(grid[0]), int(grid[1])
    n = x.shape[0]
    if x.shape[1:] != (hp * wp, patch * patch * channels):
        raise ValueError(f'expected (N, {hp * wp}, {patch * patch * channels}) patches, got '
                         f'{tuple(x.shape)}')
    x = x.reshape(n, hp, wp, patch, patch, channels)
    return torch.einsum('nhwpqc->nchpwq', x).reshape(n, channels, hp * patch, wp * patch)


def random_token_mask(n: int, length: int, ratio: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """MAE's per-sample random masking (argsort of uniform noise).

    Keeps ``L_keep = max(1, int(length * (1 - ratio)))`` tokens of every sample.

    Args:
        n: samples; length: tokens per sample ``L``; ratio: masked fraction in [0, 1).
        generator: CPU torch RNG (default: the global RNG).

    Returns:
        keep (N, L_keep) int64 sorted indices of the visible tokens, masked (N, L) bool.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1), got {ratio}')
    n_keep = max(1, int(length * (1.0 - ratio)))
    noise = torch.rand(n, length, generator=generator)
    keep = torch.sort(torch.argsort(noise, dim=1)[:, :n_keep], dim=1).values.to(device)
    masked = torch.ones(n, length, dtype=torch.bool, device=device)
    masked.scatter_(1, keep, False)
    return keep, masked


def normalize_patches(target: Tensor, valid: Tensor | None = None,
                      eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """MAE's per-patch target normalisation ``(x - mean) / sqrt(var + eps)``.

    ``var`` is the unbiased variance (``torch.var``'s default, as MAE). With ``valid``, mean
    and variance use only the valid entries of each patch (depth holes), and a patch needs at
    least two valid entries.

    Args:
        target: (N, L, D) patch values; valid: (N, L, D) bool or None (all valid).

    Returns:
        normalised (N, L, D) (0 at invalid entries) and (N, L) bool: patches with statistics.
    """
    if valid is None:
        mean = target.mean(-1, keepdim=True)
        var = target.var(-1, keepdim=True)
        ok = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
        return (target - mean) / (var + eps).sqrt(), ok
    if valid.shape != target.shape:
        raise ValueError(f'valid {tuple(valid.shape)} must have the shape of target '
                         f'{tuple(target.shape)}')
    w = valid.to(target.dtype)
    cnt = w.sum(-1, keepdim=True)
    mean = (target * w).sum(-1, keepdim=True) / cnt.clamp(min=1)
    var = ((target - mean).square() * w).sum(-1, keepdim=True) / (cnt - 1).clamp(min=1)
    out = torch.where(valid, (target - mean) / (var + eps).sqrt(), torch.zeros_like(target))
    return out, cnt.squeeze(-1) >= 2


def encode_depth(depth: Tensor, mode: DepthInput = 'inverse', depth_min: float = 0.1,
                 depth_max: float = 10.0) -> tuple[Tensor, Tensor]:
    """Depth in metres (0 = no measurement) -> a [0, 1] channel and its validity.

    ``'inverse'``: ``min(depth_min / depth, 1)`` (normalised inverse depth, near = 1);
    ``'depth'``: ``min(depth / depth_max, 1)``. Invalid pixels are 0.

    Args:
        depth: (N, 1, H, W) metres.

    Returns:
        (N, 1, H, W) encoded depth and (N, 1, H, W) bool valid (``depth > 0``, finite).
    """
    valid = (depth > 0) & torch.isfinite(depth)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    if mode == 'inverse':
        enc = (depth_min / safe).clamp(max=1.0)
    elif mode == 'depth':
        enc = (safe / depth_max).clamp(max=1.0)
    else:
        raise ValueError(f"depth encoding must be 'inverse' or 'depth', got {mode!r}")
    return torch.where(valid, enc, torch.zeros_like(enc)), valid


def _init_vit(module: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform linear layers, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _pos_embed(kind: str, grid: tuple[int, int], dim: int) -> nn.Parameter:
    if kind == 'sincos':  # MAE: fixed 2D sin-cos (timm's builder), not trained
        pe = build_sincos2d_pos_embed(list(grid), dim=dim).unsqueeze(0)
        return nn.Parameter(pe, requires_grad=False)
    if kind == 'learned':
        return nn.Parameter(torch.randn(1, grid[0] * grid[1], dim) * 0.02)
    raise ValueError(f"pos_embed must be 'sincos' or 'learned', got {kind!r}")


# ----------------------------------------------------------------------------- networks
@MODELS.register_module()
class MAEViTEncoder(BaseModule):
    """ViT encoder that can run on a subset of its patches (MAE's encoder, no class token).

    Args:
        img_size: (H, W) input size (fixed: the position embedding is per patch).
        patch_size: patch edge ``p`` (H and W must be multiples).
        in_chans: input channels (4 for RGB-D, 3 for RGB).
        embed_dim, depth, num_heads, mlp_ratio: ViT size (timm ``Block``).
        pos_embed: ``'sincos'`` (MAE, fixed) or ``'learned'``.
        drop_path: stochastic depth of the last block (linearly increasing).

    ``forward(x (N, C, H, W), keep (N, L_keep) | None) -> (N, L_keep, D)`` (all ``L`` patches
    when ``keep`` is None), after the final LayerNorm; ``grid_size = (H/p, W/p)``.
    """

    def __init__(self, img_size: Sequence[int] = (128, 160), patch_size: int = 16,
                 in_chans: int = 4, embed_dim: int = 256, depth: int = 3, num_heads: int = 4,
                 mlp_ratio: float = 4.0, pos_embed: Literal['sincos', 'learned'] = 'sincos',
                 drop_path: float = 0.0, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        img_size = (int(img_size[0]), int(img_size[1]))
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(f'MAEViTEncoder: img_size {img_size} must be a multiple of '
                             f'patch_size {patch_size}')
        if embed_dim % num_heads or embed_dim % 4:
            raise ValueError(f'MAEViTEncoder: embed_dim {embed_dim} must be divisible by 4 and '
                             f'by num_heads {num_heads}')
        self.img_size = img_size
        self.patch_size = int(patch_size)
        self.in_chans = int(in_chans)
        self.embed_dim = int(embed_dim)
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size,
                                      in_chans=in_chans, embed_dim=embed_dim)
        self.pos_embed = _pos_embed(pos_embed, self.grid_size, embed_dim)
        dpr = torch.linspace(0, drop_path, depth).tolist() if depth else []
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True,
                                            drop_path=dpr[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        _init_vit(self)
        w = self.patch_embed.proj.weight.data  # MAE: the patch conv initialised as a linear map
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans or tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f'MAEViTEncoder: input must be (N, {self.in_chans}, '
                             f'{self.img_size[0]}, {self.img_size[1]}), got {tuple(x.shape)}')
        tokens = self.patch_embed(x) + self.pos_embed.to(x.dtype)
        if keep is not None:
            tokens = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
        return self.norm(self.blocks(tokens))


class MAEDecoder(nn.Module):
    """MAE's light decoder: visible tokens + mask tokens -> per-patch pixel predictions.

    Args:
        grid_size: (H_p, W_p) patch grid; in_dim: encoder width; dim/depth/num_heads: decoder
        size (timm ``Block``); out_dim: values predicted per patch (``p*p*C_out``).

    ``forward(tokens (N, L_keep, in_dim), keep (N, L_keep)) -> (N, L, out_dim)``.
    """

    def __init__(self, grid_size: Sequence[int], in_dim: int, dim: int = 192, depth: int = 2,
                 num_heads: int = 4, out_dim: int = 16 * 16 * 4, mlp_ratio: float = 4.0,
                 pos_embed: Literal['sincos', 'learned'] = 'sincos') -> None:
        super().__init__()
        if dim % num_heads or dim % 4:
            raise ValueError(f'MAEDecoder: dim {dim} must be divisible by 4 and by num_heads '
                             f'{num_heads}')
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = _pos_embed(pos_embed, self.grid_size, dim)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio, qkv_bias=True)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, out_dim)
        _init_vit(self)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: Tensor, keep: Tensor) -> Tensor:
        x = self.embed(tokens)
        n, _, d = x.shape
        full = self.mask_token.to(x.dtype).expand(n, self.num_patches, d)
        full = full.scatter(1, keep[..., None].expand(-1, -1, d), x)
        full = self.blocks(full + self.pos_embed.to(x.dtype))
        return self.pred(self.norm(full))


@dataclass
class ImageMAEOutput:
    """Result of one :class:`ImageMAE` pass over N frames (L patches, L_keep visible).

    Attributes:
        tokens: (N, L_keep, D) encoder features of the visible patches.
        keep: (N, L_keep) int64 indices of the visible patches; masked: (N, L) bool.
        pred: (N, L, p*p*C_out) decoder predictions (RGB first, then depth when predicted).
        losses: ``{'rgb': scalar[, 'depth': scalar]}`` masked-patch MSE terms (unweighted).
        inputs: (N, C_in, H, W) the encoder's input (normalised RGB[-D]).
    """

    tokens: Tensor
    keep: Tensor
    masked: Tensor
    pred: Tensor
    losses: dict[str, Tensor]
    inputs: Tensor


class ImageMAE(nn.Module):
    """The image branch: RGB-D input encoding, masking, encoder, decoder and masked MSE.

    Args:
        encoder: a :class:`MAEViTEncoder` (or its config).
        mask_ratio: masked fraction of patches (0.6 as PiMAE; MAE uses 0.75).
        decoder_dim, decoder_depth, decoder_heads: decoder size (PiMAE: 192-d, depth 2).
        depth_input: depth channel of the input: ``'inverse'`` (normalised inverse depth
            ``depth_min / d``), ``'depth'`` (``d / depth_max``) or ``'none'`` (RGB only; the
            encoder then has 3 input channels).
        reconstruct_depth: also predict the masked patches' depth (encoded as ``depth_input``,
            ``'inverse'`` if that is ``'none'``); the depth term only counts valid pixels.
        norm_pix: per-patch normalised targets (MAE's ``norm_pix_loss``; depth normalised over
            the patch's valid pixels, patches with fewer than 2 valid pixels are skipped).
        depth_min, depth_max: metres, for the depth encodings.
        mean, std: RGB normalisation of the input (ImageNet's, as MAE).
    """

    def __init__(self, encoder: dict | MAEViTEncoder, mask_ratio: float = 0.6,
                 decoder_dim: int = 192, decoder_depth: int = 2, decoder_heads: int = 4,
                 depth_input: DepthInput = 'inverse', reconstruct_depth: bool = True,
                 norm_pix: bool = True, depth_min: float = 0.1, depth_max: float = 10.0,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.encoder: MAEViTEncoder = MODELS.build(encoder) if isinstance(encoder, dict) \
            else encoder
        if depth_input not in ('inverse', 'depth', 'none'):
            raise ValueError(f"depth_input must be 'inverse', 'depth' or 'none', got "
                             f'{depth_input!r}')
        want = 3 if depth_input == 'none' else 4
        if self.encoder.in_chans != want:
            raise ValueError(f'image encoder in_chans={self.encoder.in_chans}, but '
                             f'depth_input={depth_input!r} gives {want} input channels')
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
        if depth_min <= 0 or depth_max <= 0:
            raise ValueError(f'depth_min and depth_max must be > 0, got {depth_min}, '
                             f'{depth_max}')
        self.mask_ratio = float(mask_ratio)
        self.depth_input = depth_input
        self.reconstruct_depth = bool(reconstruct_depth)
        self.norm_pix = bool(norm_pix)
        self.depth_min, self.depth_max = float(depth_min), float(depth_max)
        self.patch = self.encoder.patch_size
        self.out_channels = 3 + int(self.reconstruct_depth)
        self.decoder = MAEDecoder(self.encoder.grid_size, self.encoder.embed_dim, decoder_dim,
                                  decoder_depth, decoder_heads,
                                  self.patch * self.patch * self.out_channels)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    @property
    def needs_depth(self) -> bool:
        return self.depth_input != 'none' or self.reconstruct_depth

    def _depth_code(self, depth: Tensor) -> tuple[Tensor, Tensor]:
        mode = 'inverse' if self.depth_input == 'none' else self.depth_input
        return encode_depth(depth, mode, self.depth_min, self.depth_max)

    def encode_input(self, images: Tensor, depth: Tensor | None) -> Tensor:
        """(N, 3, H, W) RGB in [0, 1] (+ (N, 1, H, W) metres) -> (N, C_in, H, W) input."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        if self.depth_input == 'none':
            return x
        code, _ = self._depth_code(depth)
        return torch.cat([x, code * 2.0 - 1.0], 1)

    def reconstruction_loss(self, pred: Tensor, images: Tensor, depth: Tensor | None,
                            masked: Tensor) -> dict[str, Tensor]:
        """MSE on the masked patches.

        Args:
            pred: (N, L, p*p*C_out); images: (N, 3, H, W) in [0, 1]; depth: (N, 1, H, W)
                metres (needed with ``reconstruct_depth``); masked: (N, L) bool.

        Returns:
            ``{'rgb': mean over masked patches of the per-patch mean squared error}`` and, with
            depth, ``{'depth': mean over the valid pixels of the masked patches}``.
        """
        pp = self.patch * self.patch
        m = masked.to(pred.dtype)
        target = patchify(images, self.patch)
        if self.norm_pix:
            target, _ = normalize_patches(target)
        err = (pred[..., :3 * pp] - target).square().mean(-1)
        out = {'rgb': (err * m).sum() / m.sum().clamp(min=1)}
        if self.reconstruct_depth:
            if depth is None:
                raise ValueError('reconstruct_depth needs the depth maps (depth is None)')
            code, valid = self._depth_code(depth)
            dt, dv = patchify(code, self.patch), patchify(valid, self.patch)
            if self.norm_pix:
                dt, ok = normalize_patches(dt, dv)
                dv = dv & ok[..., None]
            w = dv.to(pred.dtype) * m[..., None]
            derr = (pred[..., 3 * pp:] - dt).square()
            out['depth'] = (derr * w).sum() / w.sum().clamp(min=1)
        return out

    def forward(self, images: Tensor, depth: Tensor | None = None,
                generator: torch.Generator | None = None) -> ImageMAEOutput:
        """One MAE pass over N frames: (N, 3, H, W) RGB in [0, 1], (N, 1, H, W) depth."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be (N, 3, H, W), got {tuple(images.shape)}')
        if self.needs_depth:
            if depth is None:
                raise ValueError(f'depth_input={self.depth_input!r} / reconstruct_depth='
                                 f'{self.reconstruct_depth} need depth maps, got None')
            if depth.shape != (images.shape[0], 1) + tuple(images.shape[2:]):
                raise ValueError(f'depth must be (N, 1, H, W) = {(images.shape[0], 1)} + '
                                 f'{tuple(images.shape[2:])}, got {tuple(depth.shape)}')
        x = self.encode_input(images, depth)
        keep, masked = random_token_mask(x.shape[0], self.encoder.num_patches, self.mask_ratio,
                                         generator, x.device)
        tokens = self.encoder(x, keep)
        pred = self.decoder(tokens, keep)
        losses = self.reconstruction_loss(pred, images, depth, masked)
        return ImageMAEOutput(tokens=tokens, keep=keep, masked=masked, pred=pred, losses=losses,
                              inputs=x)
