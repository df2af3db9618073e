"""Image backbones for 2D self-supervised learning: (B, 3, H, W) -> (B, C) pooled features.

* :class:`TorchvisionResNet` — torchvision's ResNets without the classifier, with the
  ImageNet stem (7x7 stride-2 conv + max-pool) or the CIFAR stem of SimCLR's small-image
  experiments (Chen et al., ICML 2020, appendix B.9: a 3x3 stride-1 conv, no max-pool).
* :class:`TimmBackbone` — any ``timm.create_model`` architecture with its classifier removed
  (``num_classes=0``: timm returns the globally pooled features).
* :class:`SmallViT` — timm's ``VisionTransformer`` sized for small images (patch 4 on 32x32),
  class-token features.

Every backbone has ``out_channels`` (C).
"""
from __future__ import annotations

from typing import Any

import torchvision
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['TorchvisionResNet', 'TimmBackbone', 'SmallViT']

_DEPTHS = (18, 34, 50, 101, 152)
_STEMS = ('imagenet', 'cifar')


@MODELS.register_module()
class TorchvisionResNet(BaseModule):
    """torchvision ResNet-``depth`` trunk + global average pooling: (B, 3, H, W) -> (B, C).

    C is 512 for ResNet-18/34 and 2048 for ResNet-50/101/152. Parameter names are
    torchvision's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), without ``fc``.

    Args:
        depth: 18, 34, 50, 101 or 152.
        stem: ``'imagenet'`` (7x7 stride-2 conv and 3x3 max-pool: stride 32 overall) or
            ``'cifar'`` (3x3 stride-1 conv, no max-pool: stride 8, for 32x32 images).
        zero_init_residual: zero the last BN of every residual block (torchvision's option).
        weights: torchvision weights name (e.g. ``'IMAGENET1K_V1'``; downloaded by torchvision)
            or None for a random initialisation. Only with the ImageNet stem.
    """

    def __init__(self, depth: int = 18, stem: str = 'imagenet', zero_init_residual: bool = False,
                 weights: str | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if depth not in _DEPTHS:
            raise ValueError(f'TorchvisionResNet: depth must be one of {_DEPTHS}, got {depth}')
        if stem not in _STEMS:
            raise ValueError(f'TorchvisionResNet: stem must be one of {_STEMS}, got {stem!r}')
        if weights is not None and stem != 'imagenet':
            raise ValueError('TorchvisionResNet: pretrained weights need the imagenet stem, got '
                             f'stem={stem!r} with weights={weights!r}')
        net = torchvision.models.get_model(f'resnet{depth}', weights=weights,
                                           zero_init_residual=zero_init_residual)
        if stem == 'cifar':
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode='fan_out', nonlinearity='relu')
            net.maxpool = nn.Identity()
        self.depth, self.stem = depth, stem
        self.out_channels = int(net.fc.in_features)
        for name, module in net.named_children():
            if name != 'fc':
                self.add_module(name, module)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, C)."""
        if x.ndim != 4:
            raise ValueError(f'TorchvisionResNet: input must be (B, 3, H, W), got '
                             f'{tuple(x.shape)}')
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """``timm.create_model(model_name, num_classes=0, **kwargs)``: (B, 3, H, W) -> (B, C).

    Args:
        model_name: any timm architecture (``'resnet18'``, ``'resnet50d'``,
            ``'vit_tiny_patch16_224'`` with ``img_size=32, patch_size=4``, ...).
        pretrained: load timm's pretrained weights (downloads).
        **kwargs: passed to ``timm.create_model`` (they override the architecture's defaults).
    """

    def __init__(self, model_name: str, pretrained: bool = False, init_cfg: dict | None = None,
                 **kwargs: Any) -> None:
        super().__init__(init_cfg)
        import timm
        if not timm.is_model(model_name):
            raise ValueError(f'TimmBackbone: {model_name!r} is not a timm model '
                             f'(see timm.list_models())')
        kwargs.setdefault('num_classes', 0)
        if kwargs['num_classes'] != 0:
            raise ValueError('TimmBackbone: the classifier is removed (num_classes must be 0), '
                             f'got num_classes={kwargs["num_classes"]}')
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
        self.out_channels = int(self.model.num_features)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, C)."""
        return self.model(x)


@MODELS.register_module()
class SmallViT(BaseModule):
    """timm's ``VisionTransformer`` for small images: (B, 3, H, W) -> (B, embed_dim).

    Dosovitskiy et al., ICLR 2021. The output is the final-norm class token.

    Args:
        img_size: input side (default 32). patch_size: patch side (default 4: 64 tokens).
        embed_dim, depth, num_heads, mlp_ratio: transformer size (default a 6-block ViT-Tiny).
        drop_path_rate: stochastic depth.
    """

    def __init__(self, img_size: int = 32, patch_size: int = 4, embed_dim: int = 192,
                 depth: int = 6, num_heads: int = 3, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.0, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        from timm.models.vision_transformer import VisionTransformer
        if img_size % patch_size:
            raise ValueError(f'SmallViT: img_size {img_size} must be a multiple of patch_size '
                             f'{patch_size}')
        if embed_dim % num_heads:
            raise ValueError(f'SmallViT: embed_dim {embed_dim} must be a multiple of num_heads '
                             f'{num_heads}')
        self.vit = VisionTransformer(img_size=img_size, patch_size=patch_size,
                                     embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                                     mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
                                     num_classes=0, global_pool='token')
        self.out_channels = int(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, img_size, img_size) -> (B, embed_dim)."""
        return self.vit(x)
