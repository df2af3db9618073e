"""Monodepth2 depth/pose networks: shapes, ranges, parameter counts, torchvision equivalence,
ImageNet weight handling, hand-checked pose head, gradients, clear errors."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

from geo3d.models.backbones.depth_resnet import DepthResNetEncoder, tile_first_conv
from geo3d.models.depth.decoders import DepthDecoder, PoseDecoder
from geo3d.registry import MODELS


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def randomise_bn(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- shapes and ranges ---------------------------------------------------------------------------

def test_monodepth2_resolution_shapes_and_range():
    enc = DepthResNetEncoder(18).eval()
    dec = DepthDecoder(enc.num_ch_enc).eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 192, 640))
        disps = dec(feats)
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 96, 320), (1, 64, 48, 160), (1, 128, 24, 80), (1, 256, 12, 40), (1, 512, 6, 20)]
    assert sorted(disps) == [0, 1, 2, 3]
    for s, d in disps.items():
        assert d.shape == (1, 1, 192 // 2 ** s, 640 // 2 ** s)
        assert d.min() > 0 and d.max() < 1


def test_small_input_resnet50_scales_subset():
    enc = DepthResNetEncoder(50)
    assert enc.num_ch_enc == (64, 256, 512, 1024, 2048)
    dec = DepthDecoder(enc.num_ch_enc, scales=(0, 2), num_output_channels=2)
    feats = enc(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(enc.num_ch_enc)
    out = dec(feats)
    assert sorted(out) == [0, 2]
    assert out[0].shape == (1, 2, 64, 64) and out[2].shape == (1, 2, 16, 16)
    assert all(((o > 0) & (o < 1)).all() for o in out.values())


def test_pose_network_shapes():
    enc = DepthResNetEncoder(18, num_input_images=2)
    dec = PoseDecoder(enc.num_ch_enc[-1])
    axisangle, translation = dec([enc(torch.rand(3, 6, 64, 96))])
    assert axisangle.shape == (3, 2, 1, 3) and translation.shape == (3, 2, 1, 3)
    # a single encoder output (list of maps) is accepted for num_input_features == 1
    a2, t2 = dec(enc(torch.rand(3, 6, 64, 96)))
    assert a2.shape == (3, 2, 1, 3)


def test_registry_builds_the_networks():
    enc = MODELS.build(dict(type='DepthResNetEncoder', num_layers=18, num_input_images=2))
    dec = MODELS.build(dict(type='DepthDecoder', num_ch_enc=[64, 64, 128, 256, 512]))
    pose = MODELS.build(dict(type='PoseDecoder', in_channels=512))
    assert isinstance(enc, DepthResNetEncoder) and enc.conv1.in_channels == 6
    assert isinstance(dec, DepthDecoder) and isinstance(pose, PoseDecoder)


# --- parameter counts ----------------------------------------------------------------------------

def conv_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def reference_decoder_params(enc: tuple[int, ...], dec=(16, 32, 64, 128, 256), scales=4) -> int:
    """Closed form from Monodepth2's DepthDecoder table (two 3x3 ConvBlocks per level)."""
    total = 0
    for i in range(5):
        total += conv_params(enc[4] if i == 4 else dec[i + 1], dec[i], 3)
        total += conv_params(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i], 3)
    return total + sum(conv_params(dec[s], 1, 3) for s in range(scales))


def test_parameter_counts_match_reference():
    enc = DepthResNetEncoder(18)
    # torchvision ResNet-18 is 11,689,512 parameters with its 512x1000 classifier
    tv = torchvision.models.resnet18()
    assert n_params(enc) == n_params(tv) - (512 * 1000 + 1000) == 11_176_512
    dec = DepthDecoder(enc.num_ch_enc)
    assert n_params(dec) == reference_decoder_params(enc.num_ch_enc) == 3_152_724
    pose_enc = DepthResNetEncoder(18, num_input_images=2)
    assert n_params(pose_enc) == 11_176_512 + 64 * 3 * 7 * 7 == 11_185_920
    pose = PoseDecoder(512)
    expected = conv_params(512, 256, 1) + 2 * conv_params(256, 256, 3) + conv_params(256, 12, 1)
    assert n_params(pose) == expected == 1_314_572
    # numbers measured on the reference code (Monodepth2 b676244), ResNet-50
    assert n_params(DepthDecoder((64, 256, 512, 1024, 2048))) == 9_014_100


# --- equivalence with torchvision ----------------------------------------------------------------

def test_encoder_equals_torchvision_forward():
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    randomise_bn(tv)
    enc = DepthResNetEncoder(18).eval()
    missing, unexpected = enc.load_state_dict(tv.state_dict(), strict=False)
    assert missing == [] and sorted(unexpected) == ['fc.bias', 'fc.weight']
    ref = create_feature_extractor(tv, {'relu': 'f0', 'layer1': 'f1', 'layer2': 'f2',
                                        'layer3': 'f3', 'layer4': 'f4'})
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = ref((x - 0.45) / 0.225)
        got = enc(x)
    for i, g in enumerate(got):
        torch.testing.assert_close(g, expected[f'f{i}'], rtol=0, atol=0)


def test_imagenet_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    tv = torchvision.models.resnet18().eval()
    randomise_bn(tv, seed=1)
    path = tmp_path / 'resnet18-imagenet.pth'
    torch.save(tv.state_dict(), path)
    enc = DepthResNetEncoder(18, pretrained=str(path)).eval()
    torch.testing.assert_close(enc.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    pose = DepthResNetEncoder(18, pretrained=str(path), num_input_images=2).eval()
    w = tv.conv1.weight
    torch.testing.assert_close(pose.conv1.weight, torch.cat([w, w], 1) / 2)
    torch.testing.assert_close(tile_first_conv(w, 3)[:, 6:], w / 3)
    # the tiled-and-divided conv makes a stack of two identical frames look like one frame
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        single, pair = enc.double()(x), pose.double()(torch.cat([x, x], 1))
    for a, b in zip(single, pair):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_imagenet_weights_offline_fail_clearly(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', offline)
    with pytest.raises(RuntimeError, match=r'resnet18-.*\.pth.*pretrained=<path'):
        DepthResNetEncoder(18, pretrained=True)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        DepthResNetEncoder(18, pretrained=str(tmp_path / 'nowhere.pth'))
    bad = tmp_path / 'broken.pth'
    sd = DepthResNetEncoder(18).state_dict()
    del sd['layer4.1.bn2.weight']
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match=r'broken.pth.*not a ResNet-18.*layer4\.1\.bn2'):
        DepthResNetEncoder(18, pretrained=str(bad))


# --- decoder wiring against a functional re-statement --------------------------------------------

def functional_decoder(dec: DepthDecoder, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
    """Monodepth2's decoder loop written with F.* on the module's weights."""
    def conv(x, m):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), m.conv.weight, m.conv.bias)
    out, x = {}, feats[4]
    for i in (4, 3, 2, 1, 0):
        x = F.elu(conv(x, dec.upconv0[i]))
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
        if i > 0:
            x = torch.cat([x, feats[i - 1]], 1)
        x = F.elu(conv(x, dec.upconv1[i]))
        if i in dec.scales:
            out[i] = torch.sigmoid(conv(x, dec.disp_heads[str(i)]))
    return out


def test_decoder_matches_functional_restatement():
    torch.manual_seed(2)
    enc_ch = (4, 5, 6, 7, 8)
    dec = DepthDecoder(enc_ch, decoder_channels=(2, 3, 4, 5, 6))
    feats = [torch.randn(2, c, 32 // 2 ** i, 48 // 2 ** i) for i, c in enumerate(enc_ch)]
    got, ref = dec(feats), functional_decoder(dec, feats)
    for s in range(4):
        torch.testing.assert_close(got[s], ref[s])


def test_pose_decoder_closed_form_head():
    dec = PoseDecoder(in_channels=8, num_frames_to_predict_for=2)
    with torch.no_grad():
        dec.convs[2].weight.zero_()
        dec.convs[2].bias.copy_(torch.arange(12, dtype=torch.float32))
    a, t = dec([[torch.randn(2, 8, 3, 4)]])
    # zero weights: every pixel gives the bias; mean over space = bias; times 0.01
    torch.testing.assert_close(a[:, 0, 0], 0.01 * torch.tensor([[0., 1, 2]] * 2))
    torch.testing.assert_close(t[:, 0, 0], 0.01 * torch.tensor([[3., 4, 5]] * 2))
    torch.testing.assert_close(a[:, 1, 0], 0.01 * torch.tensor([[6., 7, 8]] * 2))
    torch.testing.assert_close(t[:, 1, 0], 0.01 * torch.tensor([[9., 10, 11]] * 2))


# --- gradients -----------------------------------------------------------------------------------

def test_decoder_gradcheck_float64():
    torch.manual_seed(3)
    enc_ch = (2, 2, 3, 3, 4)
    dec = DepthDecoder(enc_ch, scales=(0, 1), decoder_channels=(2, 2, 2, 2, 2)).double()
    feats = [torch.randn(1, c, 32 // 2 ** i, 32 // 2 ** i, dtype=torch.float64,
                         requires_grad=i >= 3) for i, c in enumerate(enc_ch)]

    def f(f3, f4):
        out = dec(feats[:3] + [f3, f4])
        return out[0].sum() + out[1].pow(2).sum()
    assert torch.autograd.gradcheck(f, (feats[3], feats[4]))


def test_pose_decoder_gradcheck_float64():
    torch.manual_seed(4)
    dec = PoseDecoder(in_channels=3, num_input_features=2, num_frames_to_predict_for=1).double()
    x1 = torch.randn(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: torch.cat(dec([[a], [b]]), -1), (x1, x2))


def test_gradients_reach_every_parameter():
    enc = DepthResNetEncoder(18)
    dec = DepthDecoder(enc.num_ch_enc)
    out = dec(enc(torch.rand(2, 3, 64, 64)))
    sum(o.mean() for o in out.values()).backward()
    for name, p in list(enc.named_parameters()) + list(dec.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- errors --------------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='num_layers must be one of'):
        DepthResNetEncoder(20)
    with pytest.raises(ValueError, match='num_input_images'):
        DepthResNetEncoder(18, num_input_images=0)
    enc = DepthResNetEncoder(18, num_input_images=2)
    with pytest.raises(ValueError, match=r'\(B, 6, H, W\).*got \(1, 3, 64, 64\)'):
        enc(torch.rand(1, 3, 64, 64))
    dec = DepthDecoder()
    with pytest.raises(ValueError, match='divisible by 32'):
        dec(DepthResNetEncoder(18)(torch.rand(1, 3, 80, 80)))
    with pytest.raises(ValueError, match='at least 64x64'):
        dec(DepthResNetEncoder(18)(torch.rand(1, 3, 32, 64)))
    with pytest.raises(ValueError, match='5 encoder maps'):
        dec([torch.rand(1, 64, 4, 4)])
    with pytest.raises(ValueError, match='scales'):
        DepthDecoder(scales=(0, 5))
    with pytest.raises(ValueError, match='expects 2 encoder output'):
        PoseDecoder(512, num_input_features=2)([[torch.rand(1, 512, 2, 2)]])
    with pytest.raises(ValueError, match=r'\(B, 512, h, w\)'):
        PoseDecoder(512)([[torch.rand(1, 256, 2, 2)]])


def test_imagenet_download_goes_through_torch_hub_weights_only(monkeypatch):
    seen = {}
    sd = torchvision.models.resnet18().state_dict()

    def fake_hub(url, **kwargs):
        seen.update(kwargs, url=url)
        return sd
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fake_hub)
    enc = DepthResNetEncoder(18, pretrained=True)
    assert seen['url'] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert seen['weights_only'] is True and seen['check_hash'] is True
    torch.testing.assert_close(enc.conv1.weight, sd['conv1.weight'])
