"""CostVolumeDepthNet (ProDepth's auxiliary net): shapes, detached inputs, fused skip, errors."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.depth.cost_volume_depth import CostVolumeDepthNet
from tests.helpers.tiny_depth_encoder import TINY_DECODER_CHANNELS, TinyDepthEncoder

H, W, BINS = 64, 96, 6


def make() -> CostVolumeDepthNet:
    torch.manual_seed(0)
    return CostVolumeDepthNet(encoder=dict(type='TinyDepthEncoder'), num_bins=BINS,
                              decoder=dict(decoder_channels=TINY_DECODER_CHANNELS))


def test_depth_from_detached_features_and_the_raw_volume():
    net = make()
    enc = TinyDepthEncoder()
    feats = enc.encode_until_matching(torch.rand(2, 3, H, W))
    raw = torch.rand(2, BINS, H // 4, W // 4)
    out = net(feats, raw)
    assert sorted(out) == [0] and out[0].shape == (2, 1, H, W)
    assert float(out[0].min()) > 0 and float(out[0].max()) < 1
    out[0].mean().backward()
    assert all(p.grad is None for p in enc.parameters())  # the matching encoder gets nothing
    assert net.fuse.conv.weight.grad.abs().sum() > 0
    # by hand: the fused map replaces the 1/4 feature (it is also the decoder's skip)
    with torch.no_grad():
        fused = net.fuse(torch.cat([feats[1], raw], 1))
        ref = net.decoder(net.encoder.encode_after_matching([feats[0], fused]))[0]
        torch.testing.assert_close(net(feats, raw)[0], ref)
    # the raw volume matters
    with torch.no_grad():
        assert not torch.allclose(net(feats, raw)[0], net(feats, torch.zeros_like(raw))[0])


def test_clear_errors():
    net = make()
    feats = TinyDepthEncoder().encode_until_matching(torch.rand(1, 3, H, W))
    with pytest.raises(ValueError, match=rf'raw_cost must be \(B, {BINS}, h, w\)'):
        net(feats, torch.rand(1, BINS + 1, H // 4, W // 4))
    with pytest.raises(TypeError, match='no encode_after_matching'):
        CostVolumeDepthNet(encoder=dict(type='PoseDecoder'))
