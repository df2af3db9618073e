"""ResNet encoder of Monodepth2's depth and pose networks.

Follows Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(`nianticlabs/monodepth2`, ``networks/resnet_encoder.py``), built on torchvision's ResNets:

* the input, an RGB image in [0, 1], is normalised as ``(x - 0.45) / 0.225`` (Monodepth2's
  single mean/std for all channels, not torchvision's per-channel ImageNet statistics);
* the returned features are the stem after ReLU and the outputs of ``layer1..layer4``::

      ResNet-18/34:   [64 @ H/2, 64 @ H/4, 128 @ H/8, 256 @ H/16, 512 @ H/32]
      ResNet-50+:     [64 @ H/2, 256 @ H/4, 512 @ H/8, 1024 @ H/16, 2048 @ H/32]

* for the pose network several frames are stacked along channels (``num_input_images = n``
  gives a ``3 n``-channel first conv); its ImageNet weights are the 3-channel ones tiled ``n``
  times along the input channels and divided by ``n``, so a stack of ``n`` identical frames
  gives the same stem response as one frame.

The classifier (``avgpool``, ``fc``) is not part of this module; its parameter names are
torchvision's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so a torchvision state dict
without ``fc.*`` loads as is.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch
import torchvision
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

#: Monodepth2's input normalisation (one mean/std for all channels).
IMAGE_MEAN = 0.45
IMAGE_STD = 0.225

_RESNETS: dict[int, tuple[Callable[..., torchvision.models.ResNet], Any]] = {
    18: (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    34: (torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1),
    50: (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    101: (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
    152: (torchvision.models.resnet152, torchvision.models.ResNet152_Weights.IMAGENET1K_V1),
}


def encoder_channels(num_layers: int) -> tuple[int, ...]:
    """Channels of the 5 feature maps of a ResNet-``num_layers`` encoder."""
    if num_layers not in _RESNETS:
        raise ValueError(f'num_layers must be one of {sorted(_RESNETS)}, got {num_layers}')
    return (64, 64, 128, 256, 512) if num_layers < 50 else (64, 256, 512, 1024, 2048)


def imagenet_state_dict(num_layers: int, path: str | os.PathLike[str] | None = None
                        ) -> dict[str, Tensor]:
    """torchvision's ImageNet (``IMAGENET1K_V1``) ResNet weights, classifier included.

    Args:
        num_layers: 18, 34, 50, 101 or 152.
        path: a local copy of torchvision's file (e.g. ``resnet18-f37072fd.pth``, a plain
            state dict, or ``{'state_dict': ...}``); None downloads through torch.hub's cache
            (``$TORCH_HOME/hub/checkpoints``), which needs network access the first time.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: the download failed (offline?) or the file is not a state dict.
    """
    if num_layers not in _RESNETS:
        raise ValueError(f'num_layers must be one of {sorted(_RESNETS)}, got {num_layers}')
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'pretrained ResNet-{num_layers} weights {path} do not exist')
        try:
            sd = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 (any unreadable file gets the same message)
            raise RuntimeError(f'{path}: not a readable torch state dict ({err})') from err
        if isinstance(sd, dict) and isinstance(sd.get('state_dict'), dict):
            sd = sd['state_dict']
        if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
            raise RuntimeError(f'{path}: expected a state dict of tensors (torchvision ResNet)')
        return sd
    weights = _RESNETS[num_layers][1]
    try:
        return torch.hub.load_state_dict_from_url(weights.url, map_location='cpu',
                                                  progress=False, check_hash=True,
                                                  weights_only=True)
    except Exception as err:  # noqa: BLE001 (URLError, HTTPError, OSError, hash mismatch ...)
        cache = os.path.join(torch.hub.get_dir(), 'checkpoints')
        raise RuntimeError(
            f'could not get the ImageNet ResNet-{num_layers} weights from {weights.url} '
            f'({type(err).__name__}: {err}). Without network access, copy the file into '
            f'{cache} or pass pretrained=<path to the .pth file>.') from err


def tile_first_conv(weight: Tensor, num_input_images: int) -> Tensor:
    """(64, 3, 7, 7) -> (64, 3 n, 7, 7): ``weight`` repeated ``n`` times along inputs, / ``n``."""
    return torch.cat([weight] * num_input_images, 1) / num_input_images


@MODELS.register_module()
class DepthResNetEncoder(BaseModule):
    """Monodepth2's ResNet encoder: image(s) in [0, 1] -> 5 feature maps.

    Args:
        num_layers: ResNet depth, 18 / 34 / 50 / 101 / 152 (torchvision's definitions).
        pretrained: False (random init as torchvision, Kaiming fan-out), True (torchvision's
            ImageNet weights via torch.hub; fails with a clear error offline unless cached), or
            a path to torchvision's ImageNet ``.pth`` file.
        num_input_images: frames stacked along channels (1 for depth, 2 for Monodepth2's pose
            network).
        init_cfg: mmengine init config (applied by ``init_weights``), usually None.
    """

    def __init__(self, num_layers: int = 18, pretrained: bool | str = False,
                 num_input_images: int = 1, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_ch_enc = encoder_channels(num_layers)
        if not isinstance(num_input_images, int) or num_input_images < 1:
            raise ValueError(f'num_input_images must be a positive int, got {num_input_images!r}')
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        resnet = _RESNETS[num_layers][0](weights=None)
        if num_input_images > 1:
            conv1 = nn.Conv2d(3 * num_input_images, 64, kernel_size=7, stride=2, padding=3,
                              bias=False)
            nn.init.kaiming_normal_(conv1.weight, mode='fan_out', nonlinearity='relu')
            resnet.conv1 = conv1
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        if pretrained:
            self.load_imagenet(None if pretrained is True else pretrained)

    def load_imagenet(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load torchvision's ImageNet weights (see :func:`imagenet_state_dict`).

        The classifier is dropped; with ``num_input_images > 1`` the first conv is tiled.
        """
        sd = {k: v for k, v in imagenet_state_dict(self.num_layers, path).items()
              if not k.startswith('fc.')}
        if self.num_input_images > 1 and 'conv1.weight' in sd:
            sd['conv1.weight'] = tile_first_conv(sd['conv1.weight'], self.num_input_images)
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            src = path if path is not None else 'torchvision ImageNet weights'
            raise RuntimeError(f'{src}: not a ResNet-{self.num_layers} state dict '
                               f'(missing {missing[:5]}, unexpected {unexpected[:5]})')

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3 n, H, W) in [0, 1] -> 5 maps (B, C_i, H / 2^(i+1), W / 2^(i+1)), i = 0..4.

        Spatial sizes are those of torchvision's ResNet (``ceil`` halving); the depth decoder
        needs H and W divisible by 32.
        """
        return self.encode_after_matching(self.encode_until_matching(x))

    def encode_until_matching(self, x: Tensor) -> list[Tensor]:
        """The encoder up to the 1/4-resolution matching level (ManyDepth splits after layer1).

        (B, 3 n, H, W) in [0, 1] -> ``[stem (B, 64, H/2, W/2), layer1 (B, C_1, H/4, W/4)]``;
        the last map is the one multi-frame models build their cost volume on.
        """
        expected = 3 * self.num_input_images
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f'DepthResNetEncoder expects images (B, {expected}, H, W) '
                             f'({self.num_input_images} frame(s) x RGB), got {tuple(x.shape)}')
        x = (x - IMAGE_MEAN) / IMAGE_STD
        f0 = self.relu(self.bn1(self.conv1(x)))
        return [f0, self.layer1(self.maxpool(f0))]

    def encode_after_matching(self, feats: Sequence[Tensor], fused: Tensor | None = None
                              ) -> list[Tensor]:
        """Continue :meth:`encode_until_matching`: layer2..4 -> the 5 maps of :meth:`forward`.

        Args:
            feats: the 2 maps of :meth:`encode_until_matching` (the last may be replaced by a
                map of the same shape, which is then also the returned 1/4 skip feature).
            fused: optional (B, C_1, H/4, W/4) map that layer2 consumes instead of
                ``feats[-1]`` while the returned list keeps ``feats[-1]`` (ManyDepth: the
                ``reduce_conv`` output goes deeper, the decoder's skip stays the pre-matching
                feature).
        """
        x = feats[-1] if fused is None else fused
        if len(feats) != 2 or x.dim() != 4 or x.shape[1] != self.num_ch_enc[1]:
            shapes = [tuple(f.shape) for f in feats]
            raise ValueError(f'DepthResNetEncoder.encode_after_matching expects the 2 maps of '
                             f'encode_until_matching (the one fed to layer2 with '
                             f'{self.num_ch_enc[1]} channels), got {shapes} and fused='
                             f'{None if fused is None else tuple(fused.shape)}')
        f2 = self.layer2(x)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [*feats, f2, f3, f4]
