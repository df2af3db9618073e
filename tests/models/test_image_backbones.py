"""Image backbones: torchvision/timm ResNets and the small ViT against the libraries' own models."""
from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

from geo3d.models.backbones.image import SmallViT, TimmBackbone, TorchvisionResNet
from geo3d.registry import MODELS


def test_torchvision_resnet_equals_torchvision_without_fc() -> None:
    torch.manual_seed(0)
    ours = TorchvisionResNet(depth=18).eval()
    ref = torchvision.models.resnet18()
    ref.fc = nn.Identity()
    ref.load_state_dict(ours.state_dict())  # same names, fc excluded
    ref.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x))
    assert ours.out_channels == 512 and not any(k.startswith('fc.') for k in ours.state_dict())
    assert TorchvisionResNet(depth=50).out_channels == 2048


def test_cifar_stem_keeps_resolution() -> None:
    net = TorchvisionResNet(depth=18, stem='cifar')
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    seen = {}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen['layer4'] = output.shape

    net.layer4.register_forward_hook(record)
    net(torch.randn(1, 3, 32, 32))
    assert seen['layer4'][-2:] == (4, 4)  # stride 8 (the ImageNet stem gives 1 x 1)


def test_timm_backbone_is_the_pooled_timm_model() -> None:
    torch.manual_seed(0)
    ours = MODELS.build(dict(type='TimmBackbone', model_name='resnet18',
                             channels=(8, 16, 32, 64), stem_width=8)).eval()
    ref = timm.create_model('resnet18', channels=(8, 16, 32, 64), stem_width=8).eval()
    ref.load_state_dict(ours.model.state_dict(), strict=False)  # ref also has its classifier
    x = torch.randn(2, 3, 16, 16)
    expected = ref.forward_head(ref.forward_features(x), pre_logits=True)
    torch.testing.assert_close(ours(x), expected)
    assert ours.out_channels == 64 and ours(x).shape == (2, 64)


def test_small_vit_class_token() -> None:
    vit = SmallViT(img_size=8, patch_size=4, embed_dim=16, depth=1, num_heads=2).eval()
    x = torch.randn(3, 3, 8, 8)
    tokens = vit.vit.forward_features(x)  # (B, 1 + 4 patches, 16), final norm applied
    assert tokens.shape == (3, 5, 16)
    torch.testing.assert_close(vit(x), tokens[:, 0])
    assert vit.out_channels == 16


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='depth must be one of'):
        TorchvisionResNet(depth=20)
    with pytest.raises(ValueError, match="stem must be one of"):
        TorchvisionResNet(stem='tiny')
    with pytest.raises(ValueError, match='need the imagenet stem'):
        TorchvisionResNet(stem='cifar', weights='IMAGENET1K_V1')
    with pytest.raises(ValueError, match='input must be'):
        TorchvisionResNet()(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match='is not a timm model'):
        TimmBackbone('resnet_does_not_exist')
    with pytest.raises(ValueError, match='multiple of patch_size'):
        SmallViT(img_size=10, patch_size=4)


def test_scattering_backbone() -> None:
    pytest.importorskip('kymatio')
    from geo3d.models.backbones.scattering import ScatNetBackbone, scattering_channels
    torch.manual_seed(0)
    net = ScatNetBackbone(image_size=8, J=2, L=4, stem_channels=4, stages=((8, 1), (6, 1)),
                          pool_size=2).eval()
    assert scattering_channels(2, 4) == 1 + 2 * 4 + 16 and net.out_channels == 6 * 2 * 2
    assert not any(n.startswith('scattering.') for n, _ in net.named_parameters())  # fixed
    # a constant image: zeroth order = the constant (normalised low-pass), wavelets (zero
    # mean) give ~0 in every first- and second-order coefficient
    const = torch.full((1, 3, 8, 8), 0.7)
    s = net.scatter(const).view(1, 3, 25, 2, 2)
    torch.testing.assert_close(s[:, :, 0], torch.full((1, 3, 2, 2), 0.7), atol=1e-4, rtol=0)
    assert float(s[:, :, 1:].abs().max()) < 1e-4
    x = torch.rand(2, 3, 8, 8)
    expected = net.adapter(net.scattering_bn(net.scatter(x))).flatten(1)
    torch.testing.assert_close(net(x), expected)
    with pytest.raises(ValueError, match=r'input must be \(B, 3, 8, 8\)'):
        net(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match='multiple of 2\\^J'):
        ScatNetBackbone(image_size=10, J=2)
