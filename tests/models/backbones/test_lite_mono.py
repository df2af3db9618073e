"""LiteMonoEncoder: Lite-Mono's keys/shapes/parameter counts, slow float64 references for its
blocks, the matching split, gradients, and the weight-file errors.

Bit-exactness against the reference code itself (Lite-Mono's ``LiteMono`` at commit 4874b35,
all four variants at 640x192 and 1024x320, and ProDepth's 8m ``LiteMono`` with its
``forward_features``/``forward_features2`` split) was checked once by hand with random weights
copied over strictly: max |diff| 0.0 for every feature map, in eval and train mode. The
reference code is not a dependency; ``data/lite_mono_reference_keys.json`` holds its state-dict
keys and shapes (lite-mono-8m and lite-mono at 640x192) and the parameter counts below come
from it.
"""
from __future__ import annotations

import argparse
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from geo3d.models.backbones import LiteMonoEncoder
from geo3d.models.backbones.lite_mono import LITE_MONO_VARIANTS, read_lite_mono_state_dict
from geo3d.models.backbones.lite_mono_blocks import (DilatedConvBlock, LGFIBlock,
                                                     UnusedLayerNormSlot)
from geo3d.registry import MODELS

KEYS_JSON = osp.join(osp.dirname(__file__), 'data', 'lite_mono_reference_keys.json')
#: sum of parameter numels of the reference ``LiteMono`` (encoder only).
REFERENCE_ENCODER_PARAMS = {'lite-mono': 2_848_120, 'lite-mono-small': 2_250_232,
                            'lite-mono-tiny': 1_955_192, 'lite-mono-8m': 8_139_960}
#: "Params" column of Lite-Mono's README / paper (encoder + its 3-scale depth decoder), in M.
README_PARAMS_M = {'lite-mono': 3.1, 'lite-mono-small': 2.5, 'lite-mono-tiny': 2.2,
                   'lite-mono-8m': 8.7}


def randomise_(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Every floating parameter/buffer random (layer scales O(1) so the branches matter)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if 'running_var' in name:
                t.copy_(torch.rand(t.shape, generator=g, dtype=torch.float64) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) * scale)


def lite_mono_decoder_params(num_ch_enc: tuple[int, int, int]) -> int:
    """Parameters of Lite-Mono's ``DepthDecoder(num_ch_enc, scales=range(3))``, closed form:
    3x3 convs with bias, decoder channels ``num_ch_enc // 2``."""
    dec = [c // 2 for c in num_ch_enc]
    conv = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    n = 0
    for i in (2, 1, 0):
        n += conv(num_ch_enc[-1] if i == 2 else dec[i + 1], dec[i])
        n += conv(dec[i] + (num_ch_enc[i - 1] if i > 0 else 0), dec[i])
    return n + sum(conv(dec[s], 1) for s in range(3))


# ---------------------------------------------------------------- structure vs the reference
@pytest.mark.parametrize('variant', ['lite-mono-8m', 'lite-mono'])
def test_state_dict_keys_and_shapes_are_lite_monos(variant):
    with open(KEYS_JSON) as f:
        reference = json.load(f)[variant]
    ours = [[k, list(v.shape)] for k, v in LiteMonoEncoder(variant).state_dict().items()]
    assert ours == reference


@pytest.mark.parametrize('variant', sorted(LITE_MONO_VARIANTS))
def test_parameter_counts(variant):
    m = LiteMonoEncoder(variant)
    trainable = sum(p.numel() for p in m.parameters())
    unused_norms = sum(b.numel() for mod in m.modules() if isinstance(mod, UnusedLayerNormSlot)
                       for b in mod.buffers())
    assert unused_norms > 0
    assert trainable + unused_norms == REFERENCE_ENCODER_PARAMS[variant]
    # the README counts encoder + depth decoder, rounded to 0.1 M
    total = REFERENCE_ENCODER_PARAMS[variant] + lite_mono_decoder_params(m.dims)
    assert abs(total / 1e6 - README_PARAMS_M[variant]) < 0.1


def test_decoder_count_formula_matches_monodepth2_style_count():
    # lite-mono's decoder, counted by hand: see the formula; 226,627 from the reference module
    assert lite_mono_decoder_params((48, 80, 128)) == 226_627
    assert lite_mono_decoder_params((64, 128, 224)) == 635_891


def test_variant_table_and_dilations():
    m = LiteMonoEncoder('lite-mono', height=320, width=1024)
    dil = [b.ddwconv.conv.dilation[0] for b in m.stages[2] if isinstance(b, DilatedConvBlock)]
    assert dil == [1, 2, 5, 1, 2, 5, 2, 4, 10]
    assert isinstance(m.stages[2][-1], LGFIBlock) and len(m.stages[2]) == 10
    m = LiteMonoEncoder('lite-mono-tiny')
    assert [len(s) for s in m.stages] == [4, 4, 7]
    assert [b.ddwconv.conv.dilation[0] for b in m.stages[2][:-1]] == [1, 2, 3, 2, 4, 6]
    # positional encoding only in stage 0; drop path rises linearly to the rate
    assert [s[-1].pos_embd is not None for s in m.stages] == [True, False, False]
    assert m.stages[2][-1].drop_path.drop_prob == pytest.approx(0.2)
    assert isinstance(m.stages[0][0].drop_path, torch.nn.Identity)


# ---------------------------------------------------------------- shapes and the split
def test_output_shapes_strides_and_channels():
    m = LiteMonoEncoder('lite-mono-tiny').eval()
    x = torch.rand(2, 3, 40, 72)
    feats = m(x)
    assert m.num_ch_enc == (32, 32, 64, 128) and m.feature_strides == (2, 4, 8, 16)
    assert m.matching_channels == 32
    # ceil halvings: 40 -> 20 -> 10 -> 5 -> 3, 72 -> 36 -> 18 -> 9 -> 5
    assert [tuple(f.shape) for f in feats] == [(2, 32, 20, 36), (2, 32, 10, 18),
                                              (2, 64, 5, 9), (2, 128, 3, 5)]
    lite = LiteMonoEncoder('lite-mono-tiny', with_stem_feature=False).eval()
    lite.load_state_dict(m.state_dict(), strict=True)
    assert lite.num_ch_enc == (32, 64, 128)
    short = lite(x)
    assert len(short) == 3 and all(torch.equal(a, b) for a, b in zip(short, feats[1:]))


def test_split_equals_forward_exactly():
    m = LiteMonoEncoder('lite-mono-tiny', drop_path_rate=0.3)
    randomise_(m)
    x = torch.rand(2, 3, 32, 48)
    m.eval()
    head = m.encode_until_matching(x)
    assert len(head) == 2 and head[-1].shape == (2, m.matching_channels, 8, 12)
    full = m.encode_after_matching(head)
    ref = m(x)
    assert len(full) == 4 and all(torch.equal(a, b) for a, b in zip(full, ref))
    assert torch.equal(full[1], head[-1])
    # training mode: the same random draws give the same result
    m.train()
    torch.manual_seed(3)
    a = m(x)
    torch.manual_seed(3)
    b = m.encode_after_matching(m.encode_until_matching(x))
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_split_injection_modes():
    m = LiteMonoEncoder('lite-mono-tiny').eval()
    randomise_(m)
    x = torch.rand(1, 3, 32, 32)
    feats = m.encode_until_matching(x)
    fused = torch.randn_like(feats[-1])
    # fused=: deeper stages see `fused`, the skip keeps the pre-matching feature
    a = m.encode_after_matching(feats, fused=fused)
    assert torch.equal(a[1], feats[-1])
    # in-place replacement: deeper stages and the skip both see `fused`
    feats_b = m.encode_until_matching(x)
    feats_b[-1] = fused
    b = m.encode_after_matching(feats_b)
    assert torch.equal(b[1], fused)
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    assert not torch.allclose(a[2], m(x)[2])
    # detached(): same values, no graph
    d = m.encode_until_matching(x.requires_grad_()).detached()
    assert not any(t.requires_grad for t in [*d, d.stage0_input, *d.pyramid])
    assert torch.equal(m.encode_after_matching(d)[3], m(x)[3])


def test_split_refuses_a_copied_list_and_bad_shapes():
    m = LiteMonoEncoder('lite-mono-tiny').eval()
    feats = m.encode_until_matching(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match='LiteMonoFeatures returned by encode_until_matching'):
        m.encode_after_matching(list(feats))
    with pytest.raises(ValueError, match=r'stage-0 feature must be \(1, 32, 8, 8\)'):
        m.encode_after_matching(feats, fused=torch.zeros(1, 16, 8, 8))


def test_input_normalisation_and_pyramid_vs_slow_average_pool():
    m = LiteMonoEncoder('lite-mono-tiny').eval()
    x = torch.rand(1, 3, 12, 20, dtype=torch.float64)
    m.double()
    feats = m.encode_until_matching(x)

    def slow_pool(img):  # 3x3 mean with zero padding counted, stride 2
        p = F.pad(img, (1, 1, 1, 1))
        h, w = (img.shape[2] + 1) // 2, (img.shape[3] + 1) // 2
        out = torch.zeros(*img.shape[:2], h, w, dtype=img.dtype)
        for i in range(h):
            for j in range(w):
                out[:, :, i, j] = p[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].sum((2, 3)) / 9
        return out

    p1 = slow_pool((x - 0.45) / 0.225)
    p2 = slow_pool(p1)
    p3 = slow_pool(p2)
    torch.testing.assert_close(feats.pyramid[0], p2, rtol=0, atol=1e-12)
    torch.testing.assert_close(feats.pyramid[1], p3, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- blocks vs float64 formulas
def _gelu(t):
    return 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))


def _layer_norm(t, w, b, eps=1e-6):
    mu = t.mean(-1, keepdim=True)
    var = ((t - mu) ** 2).mean(-1, keepdim=True)
    return (t - mu) / torch.sqrt(var + eps) * w + b


def test_dilated_conv_block_vs_explicit_taps():
    torch.manual_seed(0)
    blk = DilatedConvBlock(4, dilation=2, expan_ratio=3).double().eval()
    randomise_(blk)
    x = torch.randn(2, 4, 7, 9, dtype=torch.float64)
    p = dict(blk.named_parameters()) | dict(blk.named_buffers())
    d = 2
    xp = F.pad(x, (d, d, d, d))
    z = torch.zeros_like(x)
    w = p['ddwconv.conv.weight']  # (C, 1, 3, 3)
    for i in range(3):
        for j in range(3):
            z += w[:, 0, i, j].view(1, -1, 1, 1) * xp[:, :, i * d:i * d + 7, j * d:j * d + 9]
    z = (z - p['bn1.running_mean'].view(1, -1, 1, 1)) / torch.sqrt(
        p['bn1.running_var'].view(1, -1, 1, 1) + 1e-5) * p['bn1.weight'].view(1, -1, 1, 1) \
        + p['bn1.bias'].view(1, -1, 1, 1)
    h = torch.einsum('bchw,oc->bohw', z, p['pwconv1.weight']) + p['pwconv1.bias'].view(1, -1, 1, 1)
    h = torch.einsum('bchw,oc->bohw', _gelu(h), p['pwconv2.weight']) \
        + p['pwconv2.bias'].view(1, -1, 1, 1)
    expected = x + p['gamma'].view(1, -1, 1, 1) * h
    torch.testing.assert_close(blk(x), expected, rtol=0, atol=1e-12)


def _xca_formula(t, p, heads):
    """Cross-covariance attention, per head: softmax_j(tau <q_i, k_j> / |q_i| |k_j|) v_j, where
    q_i, k_j, v_j are channel vectors over the N tokens."""
    b, n, c = t.shape
    qkv = torch.einsum('bnc,oc->bno', t, p['xca.qkv.weight']) + p['xca.qkv.bias']
    q, k, v = qkv.split(c, dim=-1)
    ch = c // heads
    out = torch.zeros_like(t)
    for hd in range(heads):
        sl = slice(hd * ch, (hd + 1) * ch)
        qh, kh, vh = q[..., sl], k[..., sl], v[..., sl]  # (B, N, ch)
        qn = qh / qh.norm(dim=1, keepdim=True)
        kn = kh / kh.norm(dim=1, keepdim=True)
        logits = torch.einsum('bni,bnj->bij', qn, kn) * p['xca.temperature'][hd, 0, 0]
        attn = torch.softmax(logits, dim=-1)
        out[..., sl] = torch.einsum('bij,bnj->bni', attn, vh)
    return torch.einsum('bnc,oc->bno', out, p['xca.proj.weight']) + p['xca.proj.bias']


def _lgfi_formula(x, p, heads, pos=None):
    b, c, h, w = x.shape
    t = x.flatten(2).transpose(1, 2)  # (B, N, C), n = y W + x
    if pos is not None:
        t = t + pos.flatten(2).transpose(1, 2)
    t = t + p['gamma_xca'] * _xca_formula(_layer_norm(t, p['norm_xca.weight'],
                                                      p['norm_xca.bias']), p, heads)
    u = _layer_norm(t, p['norm.weight'], p['norm.bias'])
    u = _gelu(u @ p['pwconv1.weight'].T + p['pwconv1.bias']) @ p['pwconv2.weight'].T \
        + p['pwconv2.bias']
    return x + (p['gamma'] * u).transpose(1, 2).reshape(b, c, h, w)


def test_lgfi_block_without_positional_encoding_vs_formula():
    blk = LGFIBlock(12, use_pos_emb=False, num_heads=3, expan_ratio=2).double().eval()
    randomise_(blk, seed=1)
    x = torch.randn(2, 12, 3, 5, dtype=torch.float64)
    p = dict(blk.named_parameters())
    torch.testing.assert_close(blk(x), _lgfi_formula(x, p, 3), rtol=0, atol=1e-12)


def test_positional_encoding_vs_closed_form():
    blk = LGFIBlock(8, use_pos_emb=True, num_heads=2, expan_ratio=2).double().eval()
    randomise_(blk, seed=2)
    h, w = 3, 5
    # 32 frequencies per axis: coordinate (1..H)/(H + 1e-6) 2 pi over 10000^(2 floor(k/2)/32),
    # sine on even k, cosine on odd k; [y-features, x-features] -> 1x1 conv
    k = torch.arange(32, dtype=torch.float64)
    dim_t = 10000 ** (2 * torch.div(k, 2, rounding_mode='floor') / 32)

    def feats(coord, n):
        e = coord / (n + 1e-6) * 2 * math.pi
        a = e[:, None] / dim_t
        return torch.where(k.long() % 2 == 0, a.sin(), a.cos())  # (n, 32)

    fy = feats(torch.arange(1, h + 1, dtype=torch.float64), h)[:, None, :].expand(h, w, 32)
    fx = feats(torch.arange(1, w + 1, dtype=torch.float64), w)[None, :, :].expand(h, w, 32)
    grid = torch.cat([fy, fx], -1)  # (H, W, 64)
    proj = blk.pos_embd.token_projection
    pos = torch.einsum('hwc,oc->ohw', grid, proj.weight[:, :, 0, 0]) + proj.bias.view(-1, 1, 1)
    got = blk.pos_embd(2, h, w)
    assert got.shape == (2, 8, h, w)
    # Lite-Mono computes the coordinates in float32 (also for a float64 module)
    torch.testing.assert_close(got, pos.expand(2, -1, -1, -1), rtol=0, atol=1e-5)
    x = torch.randn(2, 8, h, w, dtype=torch.float64)
    expected = _lgfi_formula(x, dict(blk.named_parameters()), 2, pos=got)
    torch.testing.assert_close(blk(x), expected, rtol=0, atol=1e-12)


def test_gradcheck_lgfi_block_input_and_temperature():
    blk = LGFIBlock(8, use_pos_emb=True, num_heads=2, expan_ratio=2).double().eval()
    randomise_(blk, seed=3)
    x = torch.randn(1, 8, 3, 4, dtype=torch.float64, requires_grad=True)
    tau = blk.xca.temperature.detach().clone().abs().add(0.5).requires_grad_()
    fn = lambda x_, t_: functional_call(blk, {'xca.temperature': t_}, (x_,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, tau), eps=1e-6, atol=1e-6)


def test_gradcheck_dilated_conv_block():
    blk = DilatedConvBlock(3, dilation=2, expan_ratio=2).double().eval()
    randomise_(blk, seed=4)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(blk, (x,), eps=1e-6, atol=1e-6)


def test_every_parameter_gets_a_gradient():
    m = LiteMonoEncoder('lite-mono-tiny').train()
    feats = m(torch.rand(2, 3, 32, 32))
    sum(f.square().mean() for f in feats).backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None]
    assert no_grad == []  # (Lite-Mono's unused CDC LayerNorms are buffers here)


def test_init_is_lite_monos():
    torch.manual_seed(0)
    m = LiteMonoEncoder('lite-mono-8m')
    w = m.stages[2][0].pwconv1.weight  # (6 * 224, 224): Kaiming normal, fan-out, ReLU gain
    assert w.std().item() == pytest.approx(math.sqrt(2 / w.shape[0]), rel=0.02)
    assert torch.equal(m.stages[0][-1].norm_xca.weight, torch.ones(64))
    assert torch.equal(m.stages[0][0].gamma, torch.full((64,), 1e-6))
    assert torch.equal(m.downsample_layers[0][0].bn_gelu.bn.weight, torch.ones(64))


# ---------------------------------------------------------------- weights files and errors
def _ref_state(variant='lite-mono-tiny', seed=0):
    m = LiteMonoEncoder(variant)
    randomise_(m, seed=seed)
    return m, m.state_dict()


def test_pretrained_plain_kitti_and_imagenet_layouts(tmp_path):
    m, sd = _ref_state()
    x = torch.rand(1, 3, 32, 32)
    expected = m.eval()(x)
    plain = tmp_path / 'encoder_plain.pth'
    torch.save(sd, plain)
    kitti = tmp_path / 'encoder.pth'
    torch.save(dict(sd, height=192, width=640), kitti)
    imagenet = tmp_path / 'lite-mono-tiny-pretrain.pth'
    torch.save({'model': dict(sd, **{'norm.weight': torch.ones(64), 'norm.bias': torch.zeros(64),
                                     'head.weight': torch.zeros(1000, 64),
                                     'head.bias': torch.zeros(1000)}),
                'epoch': 399, 'args': argparse.Namespace(lr=4e-3, model='litemono')}, imagenet)
    for path in (plain, kitti, imagenet):
        loaded = LiteMonoEncoder('lite-mono-tiny', pretrained=str(path)).eval()
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), expected)), path
    assert set(read_lite_mono_state_dict(imagenet)) == set(sd)
    built = MODELS.build(dict(type='LiteMonoEncoder', variant='lite-mono-tiny',
                              pretrained=str(plain)))
    assert torch.equal(built.state_dict()['stages.2.6.gamma'], sd['stages.2.6.gamma'])


def test_pretrained_of_another_variant_names_file_and_keys(tmp_path):
    _, sd = _ref_state('lite-mono-tiny')
    path = tmp_path / 'tiny_encoder.pth'
    torch.save(sd, path)
    with pytest.raises(RuntimeError) as err:
        LiteMonoEncoder('lite-mono-8m', pretrained=str(path))
    msg = str(err.value)
    assert 'tiny_encoder.pth' in msg and 'lite-mono-8m' in msg
    # stage 2: 8m has 9 dilated-conv blocks + LGFI, tiny 6 + LGFI (so block 6 differs)
    assert 'missing keys: stages.2.6.ddwconv.conv.weight' in msg and '(47 in all)' in msg
    assert 'unexpected keys: stages.2.6.gamma_xca' in msg
    assert 'shape mismatches: downsample_layers.0.0.conv.weight: file (32, 3, 3, 3) vs ' \
           'model (64, 3, 3, 3)' in msg
    torch.save(dict(sd, **{'decoder.0.weight': torch.zeros(1)}), path)
    with pytest.raises(RuntimeError, match=r"tiny_encoder.pth.*unexpected keys: decoder.0.weight"):
        LiteMonoEncoder('lite-mono-tiny', pretrained=str(path))


def test_pretrained_unreadable_or_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        LiteMonoEncoder('lite-mono-tiny', pretrained=str(tmp_path / 'nowhere.pth'))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a torch file')
    with pytest.raises(RuntimeError, match='junk.pth: not readable as a weights-only'):
        LiteMonoEncoder('lite-mono-tiny', pretrained=str(junk))
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(RuntimeError, match='list.pth: expected a state dict, got list'):
        LiteMonoEncoder('lite-mono-tiny', pretrained=str(listed))
    with pytest.raises(RuntimeError, match='pretrained=True needs a file'):
        LiteMonoEncoder('lite-mono-tiny', pretrained=True)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"unknown variant 'lite-mono-8M'.*'lite-mono-8m'"):
        LiteMonoEncoder('lite-mono-8M')
    with pytest.raises(ValueError, match='heads needs one entry per stage'):
        LiteMonoEncoder('lite-mono-tiny', heads=(8, 8))
    with pytest.raises(ValueError, match=r'global_blocks\[2\]=0 leaves 7 dilated-conv blocks'):
        LiteMonoEncoder('lite-mono-tiny', global_blocks=(1, 1, 0))
    with pytest.raises(ValueError, match='not divisible by num_heads'):
        LiteMonoEncoder('lite-mono-tiny', heads=(5, 8, 8))
    m = LiteMonoEncoder('lite-mono-tiny')
    with pytest.raises(ValueError, match=r'expects images \(B, 3, H, W\).*\(1, 4, 8, 8\)'):
        m(torch.zeros(1, 4, 8, 8))
