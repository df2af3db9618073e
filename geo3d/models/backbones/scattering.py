"""ScatNet backbone of ScatSimCLR: a fixed wavelet scattering transform + a trainable adapter.

Kinakh et al., "ScatSimCLR: self-supervised contrastive learning with pretext task
regularization for small-scale datasets", ICCV 2021 workshops (arXiv 2108.13939; official code
vkinakh/scatsimclr). The image is mapped by a 2nd-order 2D scattering transform (kymatio,
Andreux et al. JMLR 2020; J scales, L orientations: ``K = 1 + J L + L^2 J (J - 1) / 2``
coefficients per colour channel at resolution ``H / 2^J``), which has no trainable parameters;
a small ResNet (BatchNorm on the 3 K scattering channels, a 3x3 conv, stages of residual basic
blocks at stride 1) adapts it, and an adaptive average pool to ``pool_size`` x ``pool_size``
gives the features. The default stages are the paper's ScatSimCLR-8 (32 -> 4 x 64 -> 4 x 128
channels, pool 4: 2048-D features).

Needs ``kymatio`` (``pip install kymatio==0.3.0``). kymatio 0.3.0's ``kymatio.torch`` also
imports its 3D module, which fails on scipy >= 1.17 (``scipy.special.sph_harm`` was removed),
so the 2D frontend is imported directly.
"""
from __future__ import annotations

from typing import Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from geo3d.registry import MODELS

__all__ = ['ScatNetBackbone', 'scattering_channels']


def scattering_channels(J: int, L: int) -> int:
    """Coefficients per input channel of a 2nd-order 2D scattering: ``1 + J L + L^2 J (J-1)/2``."""
    return 1 + J * L + L * L * J * (J - 1) // 2


def _scattering(J: int, L: int, size: int) -> nn.Module:
    try:
        from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('ScatNetBackbone needs kymatio: pip install kymatio==0.3.0') from err
    return ScatteringTorch2D(J=J, shape=(size, size), L=L, max_order=2)


@MODELS.register_module()
class ScatNetBackbone(BaseModule):
    """Scattering transform + residual adapter: (B, 3, S, S) -> (B, C_last * pool_size^2).

    Args:
        image_size: S, the (square) input side; the scattering filters are built for it.
        J: scales (the output resolution is S / 2^J). L: orientations.
        stem_channels: channels of the first 3x3 conv on the scattering coefficients.
        stages: ``(channels, blocks)`` of each stage of torchvision ``BasicBlock``s (stride 1).
        pool_size: side of the final adaptive average pool.
    """

    def __init__(self, image_size: int = 32, J: int = 2, L: int = 8, stem_channels: int = 32,
                 stages: Sequence[Sequence[int]] = ((64, 4), (128, 4)), pool_size: int = 4,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if J < 1 or L < 1:
            raise ValueError(f'ScatNetBackbone: J and L must be >= 1, got J={J}, L={L}')
        if image_size % (2 ** J):
            raise ValueError(f'ScatNetBackbone: image_size {image_size} must be a multiple of '
                             f'2^J = {2 ** J}')
        if not stages:
            raise ValueError('ScatNetBackbone: stages must hold at least one (channels, blocks)')
        self.image_size, self.J, self.L = int(image_size), int(J), int(L)
        self.scattering = _scattering(self.J, self.L, self.image_size)
        channels = 3 * scattering_channels(self.J, self.L)
        self.scattering_bn = nn.BatchNorm2d(channels)
        layers: list[nn.Module] = [nn.Conv2d(channels, stem_channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True)]
        width = stem_channels
        for planes, blocks in stages:
            for i in range(int(blocks)):
                down = None
                if i == 0 and width != planes:
                    down = nn.Sequential(nn.Conv2d(width, planes, 1, bias=False),
                                         nn.BatchNorm2d(planes))
                layers.append(BasicBlock(width, planes, downsample=down))
                width = planes
        layers.append(nn.AdaptiveAvgPool2d(pool_size))
        self.adapter = nn.Sequential(*layers)
        self.out_channels = int(width * pool_size * pool_size)

    def scatter(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, 3 K, S / 2^J, S / 2^J) scattering coefficients (no parameters)."""
        if x.ndim != 4 or x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'ScatNetBackbone: input must be (B, 3, {self.image_size}, '
                             f'{self.image_size}), got {tuple(x.shape)}')
        s = self.scattering(x.contiguous())  # (B, 3, K, h, w)
        return s.flatten(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, out_channels)."""
        return self.adapter(self.scattering_bn(self.scatter(x))).flatten(1)
