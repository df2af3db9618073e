"""MatchingEncoder: the encoder split around the cost volume (ManyDepth), ResNet and Lite-Mono."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.backbones import DepthResNetEncoder, LiteMonoEncoder, MatchingEncoder
from geo3d.models.backbones.matching_encoder import scale_pixel_intrinsics

H, W, BINS = 64, 96, 8


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def intrinsics(b: int = 2, h: int = H, w: int = W) -> torch.Tensor:
    K = torch.tensor([[0.58 * w, 0, 0.5 * w, 0], [0, 1.92 * h, 0.5 * h, 0], [0, 0, 1, 0],
                      [0, 0, 0, 1.0]])
    return K.expand(b, 4, 4).clone()


def poses(b: int = 2, n: int = 1) -> torch.Tensor:
    T = torch.eye(4).repeat(b, n, 1, 1)
    T[..., 2, 3] = -0.3  # the lookup camera is behind the target: forward motion
    T[..., 0, 3] = 0.05
    return T


def make(encoder=None) -> MatchingEncoder:
    torch.manual_seed(0)
    return MatchingEncoder(encoder=encoder, cost_volume=dict(
        type='PlaneSweepCostVolume', num_bins=BINS, min_depth_bin=0.5, max_depth_bin=20.0)).eval()


def test_resnet_split_is_the_plain_forward_and_fused_feeds_layer2_only():
    torch.manual_seed(0)
    enc = DepthResNetEncoder(18).eval()
    x = torch.rand(2, 3, H, W)
    with torch.no_grad():
        full = enc(x)
        pre = enc.encode_until_matching(x)
        assert len(pre) == 2 and pre[-1].shape == (2, 64, H // 4, W // 4)
        for a, b in zip(enc.encode_after_matching(pre), full):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        fused = torch.rand_like(pre[1])
        out = enc.encode_after_matching(pre, fused=fused)
        assert out[1] is pre[1]  # the skip stays the pre-matching feature
        torch.testing.assert_close(out[2], enc.layer2(fused))
        assert not torch.allclose(out[2], full[2])


def test_shapes_and_forward_is_match_then_fuse_with_the_confidence_masked_volume():
    model = make()
    img, look = torch.rand(2, 3, H, W), torch.rand(2, 1, 3, H, W)
    with torch.no_grad():
        feats, m = model(img, look, poses(), intrinsics())
        assert [tuple(f.shape) for f in feats] == [
            (2, 64, 32, 48), (2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6), (2, 512, 2, 3)]
        assert m.cost.cost.shape == m.cost.raw.shape == (2, BINS, 16, 24)
        assert m.cost.confidence.shape == (2, 1, 16, 24)
        # by hand: reduce_conv(cat[F_0, cost * confidence]) -> layer2..4, skip = F_0
        f0 = model.encoder.encode_until_matching(img)
        torch.testing.assert_close(m.features[1], f0[1])
        fused = model.reduce_conv(torch.cat([f0[1], m.cost.cost * m.cost.confidence], 1))
        torch.testing.assert_close(feats[2], model.encoder.layer2(fused))
        torch.testing.assert_close(feats[1], f0[1])
        # the volume is the cost volume of the lookup features at K / 4
        Km, inv_Km = scale_pixel_intrinsics(intrinsics(), (H, W), (16, 24))
        ref = model.cost_volume(f0[1], model.encoder.encode_until_matching(look[:, 0])[1]
                                .unsqueeze(1), poses(), Km, inv_Km)
        torch.testing.assert_close(m.cost.cost, ref.cost)
    assert model.reduce_conv[0].in_channels == 64 + BINS


def test_scale_pixel_intrinsics_is_monodepth2s_per_scale_K():
    K_norm = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    K0 = K_norm.clone()
    K0[0] *= W
    K0[1] *= H
    K2, inv2 = scale_pixel_intrinsics(K0.unsqueeze(0), (H, W), (H // 4, W // 4))
    ref = K_norm.clone()
    ref[0] *= W // 4
    ref[1] *= H // 4
    torch.testing.assert_close(K2[0], ref)
    torch.testing.assert_close(inv2[0] @ K2[0], torch.eye(4), atol=1e-6, rtol=0)


def test_gradients_reach_the_encoder_but_not_through_the_lookup_frames():
    model = make().train()
    img = torch.rand(2, 3, H, W)
    look = torch.rand(2, 1, 3, H, W, requires_grad=True)
    feats, m = model(img, look, poses(), intrinsics())
    assert not m.cost.cost.requires_grad  # ManyDepth builds the volume without gradient
    feats[-1].mean().backward()
    assert look.grad is None
    assert model.encoder.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert model.reduce_conv[0].weight.grad.abs().sum() > 0


def test_all_missing_lookups_skip_the_lookup_encoding():
    model = make()
    calls = []
    orig = model.encoder.encode_until_matching
    model.encoder.encode_until_matching = lambda x: calls.append(x.shape[0]) or orig(x)
    with torch.no_grad():
        _, m = model(torch.rand(2, 3, H, W), torch.rand(2, 1, 3, H, W),
                     torch.zeros(2, 1, 4, 4), intrinsics())
    assert calls == [2]  # the target only
    assert float(m.cost.cost.abs().max()) == 0 and float(m.cost.confidence.max()) == 0


def test_lite_mono_encoder_works_through_the_same_split():
    enc = dict(type='LiteMonoEncoder', variant='lite-mono-tiny', height=H, width=W,
               drop_path_rate=0.0)
    model = make(enc)
    assert isinstance(model.encoder, LiteMonoEncoder) and model.matching_channels == 32
    with torch.no_grad():
        feats, m = model(torch.rand(2, 3, H, W), torch.rand(2, 1, 3, H, W), poses(),
                         intrinsics())
    assert [tuple(f.shape) for f in feats] == [(2, 32, 32, 48), (2, 32, 16, 24),
                                               (2, 64, 8, 12), (2, 128, 4, 6)]
    assert feats[1] is m.features[1]  # the 1/4 skip stays the pre-matching stage-0 feature


def test_clear_errors():
    model = make()
    img, look = torch.rand(2, 3, H, W), torch.rand(2, 1, 3, H, W)
    with pytest.raises(ValueError, match=r'lookup_images must be \(B, N, 3, H, W\)'):
        model(img, look[:1], poses(), intrinsics())
    with pytest.raises(ValueError, match=r'poses must be \(B, N, 4, 4\) = \(2, 1, 4, 4\)'):
        model(img, look, poses(n=2), intrinsics())
    with pytest.raises(ValueError, match=r'K must be \(2, 4, 4\)'):
        model(img, look, poses(), intrinsics()[:, :3, :3])
    with pytest.raises(ValueError, match=r'image must be \(B, 3, H, W\)'):
        model(img[:, :2], look, poses(), intrinsics())
    with torch.no_grad():
        m = model.match(img, look, poses(), intrinsics())
    with pytest.raises(ValueError, match=rf'cost must be \(B, {BINS}, h, w\)'):
        model.fuse(m.features, m.cost.cost[:, :3])
    with pytest.raises(TypeError, match='split API'):
        MatchingEncoder(encoder=dict(type='PoseDecoder'))
