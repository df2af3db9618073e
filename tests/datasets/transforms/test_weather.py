"""Weather / corruption augmentations: interface, determinism, severity, physics, errors."""
import math

import pytest
import torch

from geo3d.datasets.transforms.weather import (
    ChannelDropCorruption, ComposeCorruptions, DuskCorruption, FogCorruption,
    GaussianNoiseCorruption, GreyscaleCorruption, MotionBlurCorruption, NightCorruption,
    RainCorruption, RandomCorruption, SnowCorruption, build_corruption, koschmieder,
    parse_corruption_spec, smooth_noise, visibility_to_beta, zoom_blur)
from geo3d.registry import TRANSFORMS

B, H, W = 2, 32, 64

EFFECTS = {
    'fog': FogCorruption, 'rain': RainCorruption, 'snow': SnowCorruption,
    'night': NightCorruption, 'dusk': DuskCorruption, 'zoom_blur': MotionBlurCorruption,
    'linear_blur': lambda: MotionBlurCorruption(mode='linear'),
    'greyscale': GreyscaleCorruption, 'channel_drop': ChannelDropCorruption,
    'gaussian_noise': GaussianNoiseCorruption,
    'rain+fog+night': lambda: build_corruption('rain+fog+night'),
}
RANDOM = {'fog', 'rain', 'snow', 'night', 'dusk', 'linear_blur', 'channel_drop',
          'gaussian_noise', 'rain+fog+night'}


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def scene(b=B, h=H, w=W, seed=1):
    """A textured image and a depth map growing from 3 m (bottom) to 80 m (top)."""
    gen = g(seed)
    img = 0.15 + 0.7 * torch.rand(b, 3, h, w, generator=gen)
    rows = torch.linspace(80.0, 3.0, h).view(1, 1, h, 1)
    return img, rows.expand(b, 1, h, w).clone()


@pytest.fixture(params=sorted(EFFECTS))
def effect(request):
    return request.param, EFFECTS[request.param]()


def test_shape_dtype_range(effect):
    name, corr = effect
    img, depth = scene()
    for s in (1, 3, 5):
        out = corr(img, depth, s, g())
        assert out.shape == img.shape and out.dtype == img.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        assert not torch.equal(out, img), name
    out64 = corr(img.double(), depth.double(), 2, g())
    assert out64.dtype == torch.float64


def test_determinism_by_seed(effect):
    name, corr = effect
    img, depth = scene()
    a, b = corr(img, depth, 3, g(7)), corr(img, depth, 3, g(7))
    assert torch.equal(a, b)
    c = corr(img, depth, 3, g(8))
    if name in RANDOM:
        assert not torch.equal(a, c), f'{name}: another seed should change the output'
    else:
        assert torch.equal(a, c)


def test_severity_monotonic(effect):
    """mean |aug - clean| grows strictly from severity 1 to 5 (same seed)."""
    name, corr = effect
    img, depth = scene()
    change = [float((corr(img, depth, s, g(3)) - img).abs().mean()) for s in range(1, 6)]
    assert all(a < b for a, b in zip(change, change[1:])), (name, change)


def test_registered_names():
    for name in ('FogCorruption', 'RainCorruption', 'SnowCorruption', 'NightCorruption',
                 'DuskCorruption', 'MotionBlurCorruption', 'GreyscaleCorruption',
                 'ChannelDropCorruption', 'GaussianNoiseCorruption', 'ComposeCorruptions',
                 'RandomCorruption'):
        assert TRANSFORMS.get(name) is not None, name
    assert isinstance(TRANSFORMS.build(dict(type='FogCorruption', heterogeneity=0.0)),
                      FogCorruption)


# ------------------------------------------------------------------------------------- fog
def test_fog_koschmieder_closed_form_constant_depth():
    img, _ = scene()
    img = img.double()
    depth = torch.full((B, 1, H, W), 40.0, dtype=torch.float64)
    fog = FogCorruption(heterogeneity=0.0, airlight=(0.7, 0.8, 0.9))
    for s in range(1, 6):
        beta = 3.912 / fog.visibility[s - 1]
        t = math.exp(-beta * 40.0)
        air = torch.tensor([0.7, 0.8, 0.9], dtype=torch.float64).view(1, 3, 1, 1)
        want = img * t + air * (1 - t)
        assert torch.allclose(fog(img, depth, s, g()), want, atol=1e-12)
    assert visibility_to_beta(100.0) == pytest.approx(-math.log(0.02) / 100.0, rel=1e-3)


def test_fog_far_pixels_attenuate_more():
    img, _ = scene()
    depth = torch.full((B, 1, H, W), 5.0)
    depth[..., W // 2:] = 60.0  # right half far
    air = torch.tensor(FogCorruption().airlight).view(1, 3, 1, 1)
    for het in (0.0, 0.2):
        out = FogCorruption(heterogeneity=het)(img, depth, 3, g())
        # remaining contrast t = |out - A| / |I - A|
        t = ((out - air).abs() / (img - air).abs().clamp_min(1e-3)).mean((0, 1, 2))
        assert float(t[W // 2:].mean()) < 0.5 * float(t[:W // 2].mean())
    # sky / invalid depth (0) counts as far: only airlight left
    zero = torch.zeros(B, 1, H, W)
    out = FogCorruption(heterogeneity=0.0)(img, zero, 1, g())
    assert torch.allclose(out, air.expand_as(out), atol=1e-3)


def test_koschmieder_tensor_beta():
    img, depth = scene()
    beta = torch.full((B, 1, H, W), 0.02)
    assert torch.allclose(koschmieder(img, depth, beta, (0.5, 0.5, 0.5)),
                          koschmieder(img, depth, 0.02, (0.5, 0.5, 0.5)))


def test_smooth_noise_normalised():
    n = smooth_noise(3, 40, 90, g(), torch.zeros(1))
    assert n.shape == (3, 1, 40, 90)
    assert torch.allclose(n.mean((2, 3)), torch.zeros(3, 1), atol=1e-5)
    assert torch.allclose(n.std((2, 3)), torch.ones(3, 1), atol=1e-4)
    # smooth: neighbour differences far below white noise's (~1.13 for unit std)
    assert float((n[..., 1:] - n[..., :-1]).abs().mean()) < 0.3


# ------------------------------------------------------------------------ rain / snow depth
@pytest.mark.parametrize('cls', [RainCorruption, SnowCorruption])
def test_particles_hidden_by_near_scene(cls):
    """Streaks / flakes (the random part) show in front of a far scene, not a near one."""
    img = torch.full((B, 3, H, W), 0.3)
    corr = cls()
    spread = {}
    for d in (0.3, 100.0):
        depth = torch.full((B, 1, H, W), d)
        spread[d] = float((corr(img, depth, 5, g(1)) - corr(img, depth, 5, g(2))).abs().mean())
    assert spread[100.0] > 0.005 and spread[0.3] < 0.02 * spread[100.0], spread


def test_rain_streaks_are_oriented_lines():
    """Near-vertical streaks: the change is correlated along columns, not along rows."""
    img = torch.full((1, 3, 96, 96), 0.2)
    depth = torch.full((1, 1, 96, 96), 100.0)
    rain = RainCorruption(tilt_std=0.0, darken=(0,) * 5, desaturate=(0,) * 5,
                          visibility=(1e9,) * 5)
    diff = (rain(img, depth, 5, g()) - img)[0, 0]
    diff = diff - diff.mean()
    vert = float((diff[1:] * diff[:-1]).mean())
    horiz = float((diff[:, 1:] * diff[:, :-1]).mean())
    assert vert > 3 * abs(horiz)


# --------------------------------------------------------------------------- night / dusk
def test_night_headlights_light_near_things():
    img = torch.full((1, 3, H, W), 0.5)
    night = NightCorruption(photons=(1e9,) * 5, read_noise=(0.0,) * 5)
    near = night(img, torch.full((1, 1, H, W), 3.0), 3, g())
    far = night(img, torch.full((1, 1, H, W), 60.0), 3, g())
    beam = (slice(None), slice(None), slice(int(0.55 * H), int(0.7 * H)),
            slice(W // 2 - 4, W // 2 + 4))
    assert float(near[beam].mean()) > 1.3 * float(far[beam].mean())
    dark = NightCorruption(headlight=0.0, photons=(1e9,) * 5, read_noise=(0.0,) * 5)
    assert torch.allclose(dark(img, torch.full((1, 1, H, W), 3.0), 3, g()),
                          dark(img, None, 3, g()))
    # blue cast
    out = dark(img, None, 3, g())
    assert float(out[:, 2].mean()) > float(out[:, 0].mean())


def test_night_noise_grows_with_severity():
    """Relative noise (std / mean over a flat grey image, no headlights, no vignette)."""
    img = torch.full((1, 3, 64, 64), 0.5)
    night = NightCorruption(headlight=0.0, vignette=(0.0,) * 5)
    cv = []
    for s in range(1, 6):
        out = night(img, None, s, g())
        cv.append(float(out.std() / out.mean()))
    assert all(a < b for a, b in zip(cv, cv[1:])), cv


def test_dusk_is_warm():
    img = torch.full((1, 3, H, W), 0.5)
    out = DuskCorruption()(img, None, 5, g())
    assert float(out[:, 0].mean()) > 1.2 * float(out[:, 2].mean())


# -------------------------------------------------------------------------- blur and colour
def test_zoom_blur_reference():
    img, _ = scene(b=1, h=33, w=33)
    assert torch.allclose(zoom_blur(torch.full((1, 3, 33, 33), 0.4), 0.1),
                          torch.full((1, 3, 33, 33), 0.4), atol=1e-6)
    out = zoom_blur(img, 0.1)
    # the focus of expansion (centre pixel) does not move
    assert torch.allclose(out[..., 16, 16], img[..., 16, 16], atol=1e-5)
    # slow reference: average of n copies zoomed about the centre, computed per pixel
    n = int(min(32, max(2, math.ceil(0.1 * 0.5 * math.hypot(33, 33)) + 1)))
    ref = torch.zeros_like(img)
    for k in range(n):
        s = 1 - 0.1 * k / (n - 1)
        theta = torch.tensor([[[s, 0.0, 0.0], [0.0, s, 0.0]]])
        grid = torch.nn.functional.affine_grid(theta, img.shape, align_corners=False)
        ref += torch.nn.functional.grid_sample(img, grid, padding_mode='border',
                                               align_corners=False)
    assert torch.allclose(out, ref / n, atol=1e-5)


def test_zoom_blur_depth_aware():
    """With depth, far pixels blur less than near ones."""
    img, _ = scene(b=1, h=48, w=96)
    mb = MotionBlurCorruption()
    near = mb(img, torch.full((1, 1, 48, 96), 2.0), 5)
    far = mb(img, torch.full((1, 1, 48, 96), 100.0), 5)
    assert float((far - img).abs().mean()) < 0.5 * float((near - img).abs().mean())
    assert torch.allclose(near, mb(img, None, 5))


def test_greyscale_and_channel_drop_exact():
    img, _ = scene()
    grey = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    out = GreyscaleCorruption()(img, None, 5)
    for c in range(3):
        assert torch.allclose(out[:, c], grey, atol=1e-6)
    drop = ChannelDropCorruption(channel='g')(img, None, 3)
    assert torch.allclose(drop[:, 1], img[:, 1] * 0.4) and torch.equal(drop[:, 0], img[:, 0])
    keep = ChannelDropCorruption(channel='b', mode='keep')(img, None, 5)
    assert torch.equal(keep[:, 2], img[:, 2]) and float(keep[:, :2].abs().max()) == 0


def test_gaussian_noise_std():
    img = torch.full((1, 3, 128, 128), 0.5)
    out = GaussianNoiseCorruption()(img, None, 1, g())
    assert float((out - img).std()) == pytest.approx(0.08, rel=0.05)


# ------------------------------------------------------------------------- compose, random
def test_compose_equals_chain():
    img, depth = scene()
    gen_a, gen_b = g(5), g(5)
    composed = build_corruption('rain+fog+night')(img, depth, 4, gen_a)
    x = img
    for c in (RainCorruption(), FogCorruption(), NightCorruption()):
        x = c(x, depth, 4, gen_b)
    assert torch.equal(composed, x)
    comp = ComposeCorruptions(['greyscale', dict(type='GaussianNoiseCorruption')])
    assert comp.name == 'greyscale+gaussian_noise' and not comp.needs_depth
    assert build_corruption('rain+fog+night').needs_depth


def test_random_corruption_per_image():
    img, _ = scene(b=8)
    rc = RandomCorruption(['greyscale', 'zoom_blur'], severities=(2, 4))
    out = rc(img, None, None, g(11))
    choice, sev = rc.sample(8, g(11))
    assert set(choice.tolist()) == {0, 1} and set(sev.tolist()) <= {2, 4}
    for i in range(8):
        want = rc.corruptions[int(choice[i])](img[i:i + 1], None, int(sev[i]))
        assert torch.allclose(out[i:i + 1], want, atol=1e-6)
    fixed = rc(img, None, 3, g(11))
    assert not torch.equal(fixed, out)
    clean = RandomCorruption(['greyscale'], clean_prob=0.5)
    choice, _ = clean.sample(8, g(0))
    res = clean(img, None, None, g(0))
    for i in range(8):
        assert torch.equal(res[i], img[i]) == (int(choice[i]) == -1)


def test_parse_spec():
    name, corr, sev = parse_corruption_spec('fog:4')
    assert (name, sev) == ('fog', 4) and isinstance(corr, FogCorruption)
    name, corr, sev = parse_corruption_spec('rain+fog+night')
    assert sev == 3 and isinstance(corr, ComposeCorruptions) and len(corr.corruptions) == 3
    assert isinstance(build_corruption('GreyscaleCorruption'), GreyscaleCorruption)
    with pytest.raises(ValueError, match="severity 'x'"):
        parse_corruption_spec('fog:x')
    with pytest.raises(ValueError, match='severity must be in 1..5'):
        parse_corruption_spec('fog:6')
    with pytest.raises(ValueError, match="unknown corruption 'hail'.*fog"):
        build_corruption('hail')


# ---------------------------------------------------------------------------------- errors
def test_bad_input_errors():
    img, depth = scene()
    fog = FogCorruption()
    with pytest.raises(ValueError, match='FogCorruption: depth is required'):
        fog(img, None, 3)
    with pytest.raises(ValueError, match=r'depth must be \(B, 1, H, W\)'):
        fog(img, depth[:, :, :-1], 3)
    with pytest.raises(ValueError, match='RandomCorruption: depth is required'):
        RandomCorruption(['greyscale', 'fog'])(img)
    grey = GreyscaleCorruption()
    for sev in (0, 6):
        with pytest.raises(ValueError, match='severity must be in 1..5, got'):
            grey(img, None, sev)
    for sev in (2.5, True, '3'):
        with pytest.raises(TypeError, match='severity must be an int'):
            grey(img, None, sev)
    with pytest.raises(ValueError, match=r'image must be \(B, 3, H, W\)'):
        grey(img[0], None, 3)
    with pytest.raises(ValueError, match=r'image must be \(B, 3, H, W\)'):
        grey(img[:, :1], None, 3)
    with pytest.raises(TypeError, match='image must be float'):
        grey((img * 255).to(torch.uint8), None, 3)
    with pytest.raises(ValueError, match=r'image values must be in \[0, 1\]'):
        grey(img * 255, None, 3)
    with pytest.raises(TypeError, match='generator must be a torch.Generator'):
        grey(img, None, 3, 42)
    with pytest.raises(ValueError, match='FogCorruption: visibility'):
        FogCorruption(visibility=(10, 20))
    with pytest.raises(ValueError, match="mode must be 'zoom' or 'linear'"):
        MotionBlurCorruption(mode='radial')


@pytest.mark.gpu
def test_every_effect_runs_on_cuda_with_either_generator():
    img, depth = scene()
    img, depth = img.cuda(), depth.cuda()
    for name, make in EFFECTS.items():
        corr = make()
        gen = torch.Generator(device='cuda')
        a = corr(img, depth, 4, gen.manual_seed(3))
        b = corr(img, depth, 4, gen.manual_seed(3))
        assert a.is_cuda and torch.equal(a, b), name
        assert 0 <= float(a.min()) and float(a.max()) <= 1, name
        c = corr(img, depth, 4, g(3))  # a CPU generator on a CUDA image: draws move over
        assert c.is_cuda and torch.equal(c, corr(img, depth, 4, g(3))), name
    rc = RandomCorruption(['fog', 'greyscale'])
    assert rc(img, depth, None, torch.Generator(device='cuda').manual_seed(0)).is_cuda


def test_show_corruptions_tool(tmp_path, capsys):
    """tools/show_corruptions.py writes the labelled grid; fog without --depth is refused."""
    import numpy as np
    from PIL import Image

    from tests.helpers.tools import load_tool
    img = np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / 'frame.png')
    depth = np.linspace(50, 2, 32, dtype=np.float32)[:, None].repeat(64, 1)
    Image.fromarray((depth * 256).astype(np.uint16)).save(tmp_path / 'depth.png')
    tool = load_tool('show_corruptions')
    out = tmp_path / 'grid.png'
    assert tool.main(['--image', str(tmp_path / 'frame.png'), '--depth',
                      str(tmp_path / 'depth.png'), '--corruptions', 'fog', 'night',
                      '--severities', '1', '5', '--colors', '64', '--out', str(out)]) == 0
    grid = Image.open(out)
    assert grid.size == (tool.LABEL_W + 3 * 64, 14 + 2 * 32)
    assert tool.main(['--image', str(tmp_path / 'frame.png'), '--corruptions', 'rain',
                      '--out', str(tmp_path / 'x.png')]) == 2
    assert 'rain need --depth' in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()
