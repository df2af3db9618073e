"""DepthPredictor: inputs of every kind, sizes, checkpoints, colouring, video rendering."""
from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from geo3d.apis import DepthPredictor, colorize, render_depth_video, round_size
from geo3d.apis.video import VideoWriter, read_video
from geo3d.models.depth.monodepth import MonoDepth

H, W = 64, 96  # the "training size" of the test config


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def config(tmp_path, model_extra: str = '') -> str:
    path = tmp_path / 'cfg.py'
    path.write_text(f"""
model = dict(type='MonoDepth', min_depth=0.1, max_depth=100.0{model_extra})
test_dataloader = dict(dataset=dict(type='KITTIRawDataset', height={H}, width={W}))
""")
    return str(path)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A MonoDepth with non-default weights saved as a training checkpoint."""
    tmp = tmp_path_factory.mktemp('pred')
    torch.manual_seed(5)
    model = MonoDepth().eval()
    with torch.no_grad():  # move the weights away from any fresh initialisation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ckpt = tmp / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, ckpt)
    return model, str(ckpt), tmp


@pytest.fixture(scope='module')
def pred(trained):
    """The predictor of ``trained`` (shared: building one takes a while)."""
    _, ckpt, tmp = trained
    return DepthPredictor(config(tmp), ckpt)


def image(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    small = g.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def test_training_size_prediction_equals_the_models_predict_mode(trained, pred):
    model = trained[0]
    assert pred.size == (H, W)
    img = image()
    out = pred.predict(img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = model(x, mode='predict')[0]['pred_disp'][0].numpy()
    np.testing.assert_allclose(out.disp_net, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.disp, out.disp_net)  # no resizing at the training size
    np.testing.assert_allclose(out.depth, 1.0 / out.disp, rtol=1e-6)
    assert 1 / 100 - 1e-6 <= out.disp.min() and out.disp.max() <= 1 / 0.1 + 1e-6


def test_other_input_sizes_are_resized_there_and_back(pred):
    img = image(90, 150)
    out = pred.predict(img)
    assert out.disp_net.shape == (H, W) and out.disp.shape == (90, 150)
    # back to the input size: bilinear with half-pixel centres, as cv2's INTER_LINEAR
    ref = cv2.resize(out.disp_net, (150, 90), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out.disp, ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.depth, 1.0 / out.disp, rtol=1e-6)


def test_every_input_kind_gives_the_same_depth(pred, tmp_path):
    img = image(seed=1)
    png = tmp_path / 'img.png'
    Image.fromarray(img).save(png)
    ref = pred.predict(img).depth
    variants = [Image.fromarray(img), str(png), img.astype(np.float32) / 255,
                torch.from_numpy(img).permute(2, 0, 1),
                torch.from_numpy(img).permute(2, 0, 1).float() / 255]
    for v in variants:
        np.testing.assert_allclose(pred.predict(v).depth, ref, rtol=1e-5)
    batch = pred.predict([img, image(seed=2)])
    assert batch.depth.shape == (2, H, W)
    np.testing.assert_allclose(batch.depth[0], ref, rtol=1e-4)
    stacked = pred.predict(np.stack([img, image(seed=2)]))
    np.testing.assert_allclose(stacked.depth, batch.depth, rtol=1e-5)


def test_checkpoint_weights_are_used(trained, pred):
    model, ckpt, tmp = trained
    with pytest.warns(UserWarning, match='randomly initialised'):
        fresh = DepthPredictor(config(tmp), None)
    loaded = pred
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[k], v)
    img = image()
    assert not np.allclose(fresh.predict(img).disp, loaded.predict(img).disp)


def test_converted_checkpoint_needs_no_config(trained, tmp_path):
    """tools/convert_depth_weights.py writes module configs and the training size into meta."""
    model, _, _ = trained
    meta = {'height': H, 'width': W, 'module_configs': {
        'encoder': dict(type='DepthResNetEncoder', num_layers=18, num_input_images=1),
        'depth_decoder': dict(type='DepthDecoder', num_ch_enc=(64, 64, 128, 256, 512),
                              scales=(0, 1, 2, 3))}}
    sd = {k: v for k, v in model.state_dict().items()
          if k.startswith(('encoder.', 'depth_decoder.'))}
    path = tmp_path / 'converted.pth'
    torch.save({'state_dict': sd, 'meta': meta}, path)
    pred = DepthPredictor(None, path)
    assert pred.size == (H, W) and pred.model.pose_encoder is None
    img = image()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ref = model(x, mode='predict')[0]['pred_disp'][0].numpy()
    np.testing.assert_allclose(pred.predict(img).disp, ref, rtol=1e-5, atol=1e-6)


def test_size_override_and_rounding(pred):
    pred.size = (128, 192)
    try:
        assert pred.predict(image()).disp_net.shape == (128, 192)
        with pytest.raises(ValueError, match=r'divisible by 32.*\(128, 416\)'):
            pred.size = (128, 410)
    finally:
        pred.size = (H, W)
    assert round_size(375, 1242) == (384, 1248)


def test_clear_errors(trained, pred, tmp_path):
    _, ckpt, tmp = trained
    cfg = config(tmp)
    with pytest.raises(FileNotFoundError, match='nope.py does not exist'):
        DepthPredictor(str(tmp_path / 'nope.py'), ckpt)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        DepthPredictor(cfg, str(tmp_path / 'nope.pth'))
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1)}}, other)
    with pytest.raises(ValueError, match='missing .* depth-network keys'):
        DepthPredictor(cfg, str(other))
    with pytest.raises(ValueError, match='meta.module_configs'):
        DepthPredictor(None, ckpt)
    no_size = tmp_path / 'no_size.py'
    no_size.write_text("model = dict(type='MonoDepth')\n")
    with pytest.raises(ValueError, match='no input size'):
        DepthPredictor(str(no_size), ckpt)
    with pytest.raises(ValueError, match=r'\(H, W, 3\) RGB, got \(64, 96\)'):
        pred.predict(np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match=r'float images must be in \[0, 1\]'):
        pred.predict(np.full((H, W, 3), 255.0, np.float32))
    with pytest.raises(ValueError, match='images of one size'):
        pred.predict([image(), image(96, 96)])


def test_colorize_maps_min_and_95th_percentile_to_the_colormap_ends():
    disp = np.linspace(0.0, 1.0, 200, dtype=np.float32).reshape(10, 20)
    rgb = colorize(disp)
    cmap = matplotlib.colormaps['magma']
    lo, hi = disp.min(), np.percentile(disp, 95)
    assert rgb.shape == (10, 20, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[0, 0], np.array(cmap(0.0)[:3]) * 255, atol=1)
    np.testing.assert_array_equal(rgb[-1, -1], rgb[disp >= hi][0])  # clipped above the 95th
    mid = (disp[5, 7] - lo) / (hi - lo)
    np.testing.assert_allclose(rgb[5, 7], np.array(cmap(mid)[:3]) * 255, atol=2)
    lum = rgb.astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(lum.reshape(-1)[disp.reshape(-1) <= hi]) >= -1)  # near = brighter
    assert colorize(np.stack([disp, disp])).shape == (2, 10, 20, 3)
    flat = colorize(np.ones((4, 4)), vmin=0.0, vmax=2.0)
    np.testing.assert_allclose(flat[0, 0], np.array(cmap(0.5)[:3]) * 255, atol=2)
    with pytest.raises(ValueError, match='unknown matplotlib colormap'):
        colorize(disp, cmap='no-such-map')


def test_render_depth_video_writes_side_by_side_frames(pred, tmp_path):
    src = tmp_path / 'in.mp4'
    with VideoWriter(src, fps=5) as w:
        for i in range(5):
            w.write(image(70, 110, seed=i))
    stats = render_depth_video(pred, src, tmp_path / 'out.mp4', max_frames=3, batch_size=2,
                               progress=False)
    assert stats.frames == 3 and stats.input_size == (70, 110) and stats.network_size == (H, W)
    out = list(read_video(tmp_path / 'out.mp4'))
    assert len(out) == 3 and out[0].shape == (70, 220, 3)
    first = next(iter(read_video(src)))
    # left half: the input frame (up to the codec); right half: the colour map of its depth
    assert np.abs(out[0][:, :110].astype(int) - first.astype(int)).mean() < 12
    expected = colorize(pred.predict(first).disp)
    assert np.abs(out[0][:, 110:].astype(int) - expected.astype(int)).mean() < 12
