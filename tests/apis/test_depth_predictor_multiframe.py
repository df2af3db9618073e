"""DepthPredictor with multi-frame models (ManyDepth): pairs, streams, intrinsics, teacher."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from geo3d.apis import DepthPredictor
from geo3d.apis.depth_predictor import is_multi_frame, load_intrinsics
from geo3d.models.depth.manydepth import ManyDepth
from geo3d.models.depth.prodepth import ProDepth
from geo3d.structures.camera import disp_to_depth
from tests.helpers.tiny_depth_encoder import TINY_DECODER_CHANNELS

H, W = 64, 96  # the "training size" of the test config
KITTI_K = [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]]
TINY = dict(type='TinyDepthEncoder')
DEC = dict(type='DepthDecoder', decoder_channels=TINY_DECODER_CHANNELS)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def manydepth_cfg(kind: str = 'ManyDepth') -> dict:
    """A tiny randomly initialised multi-frame model (narrow encoders, 8 depth bins)."""
    model = dict(type=kind, teacher=dict(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC),
                 encoder=dict(encoder=TINY, cost_volume=dict(type='PlaneSweepCostVolume',
                                                             num_bins=8)),
                 depth_decoder=DEC)
    if kind == 'ProDepth':
        model.update(uncertainty_decoder=DEC, aux_depth=dict(decoder=DEC))
    return model


def config_file(tmp_path, kind: str = 'ManyDepth') -> str:
    path = tmp_path / f'{kind.lower()}_cfg.py'
    path.write_text(f'model = {manydepth_cfg(kind)!r}\n'
                    f"test_dataloader = dict(dataset=dict(type='KITTIRawDataset', height={H}, "
                    f'width={W}, frame_ids=(0, -1)))\n')
    return str(path)


def tiny_multiframe(kind: str = 'ManyDepth', seed: int = 3) -> torch.nn.Module:
    """The model of :func:`manydepth_cfg` with weights where the cost volume matters: the
    cost-volume inputs of ``reduce_conv`` are amplified x100 and the multi-frame decoder's
    weights x2 (a fresh decoder's sigmoid sits flat at 0.5), so matching changes the depth by
    several per cent (more than the depth varies across a fallback prediction)."""
    from geo3d.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(manydepth_cfg(kind)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
        model.encoder.reduce_conv[0].weight[:, model.encoder.matching_channels:] *= 100.0
        for name, p in model.depth_decoder.named_parameters():
            if name.endswith('weight'):
                p.mul_(2.0)
    return model


def save_checkpoint(model: torch.nn.Module, path) -> str:
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, path)
    return str(path)


@pytest.fixture(scope='module')
def multi(tmp_path_factory):
    """(model, predictor of its checkpoint, tmp dir)."""
    tmp = tmp_path_factory.mktemp('multi')
    model = tiny_multiframe()
    pred = DepthPredictor(config_file(tmp), save_checkpoint(model, tmp / 'many.pth'))
    return model, pred, tmp


def textured(h: int = H, w: int = W, seed: int = 0, shift: int = 0) -> np.ndarray:
    """Smooth random texture; ``shift`` moves it right by that many pixels (camera motion)."""
    g = np.random.default_rng(seed)
    small = g.integers(0, 256, (h // 4, (w + 16) // 4, 3), dtype=np.uint8)
    big = cv2.resize(small, (w + 16, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(big[:, 8 - shift:8 - shift + w])


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255


def reference_disp(model: ManyDepth, cur: np.ndarray, prev: np.ndarray,
                   K_norm=KITTI_K) -> np.ndarray:
    """The model called directly with a dataset-style dict, frames stored as (-1, 0)."""
    K = np.eye(4)
    K[:3, :3] = K_norm
    K[0] *= W  # Monodepth2: row 0 times the width, row 1 times the height
    K[1] *= H
    K = torch.tensor(K, dtype=torch.float32)[None, None]
    inputs = {'color': [torch.stack([to_tensor(prev)[0], to_tensor(cur)[0]])[None]],
              'K': K, 'inv_K': torch.linalg.inv(K)}
    with torch.no_grad():
        sig = model.predict_disparities(inputs, [{'frame_ids': (-1, 0)}])[0]
    return disp_to_depth(sig, 0.1, 100.0)[0][0, 0].numpy()


def test_the_model_kind_is_detected(multi):
    model, pred, _ = multi
    assert pred.multi_frame and is_multi_frame(pred.model) and isinstance(pred.model, ManyDepth)
    assert not is_multi_frame(model.teacher)  # a MonoDepth
    for k, v in model.state_dict().items():
        torch.testing.assert_close(pred.model.state_dict()[k], v)


def test_pair_prediction_equals_the_model_called_with_the_dataset_dict(multi, tmp_path):
    model, pred, _ = multi
    cur, prev = textured(shift=3), textured()
    out = pred.predict(cur, previous=prev)
    np.testing.assert_allclose(out.disp_net, reference_disp(model, cur, prev), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(out.depth, 1.0 / out.disp, rtol=1e-6)
    # other intrinsics, given as ManyDepth's JSON file, are scaled to the network size
    K2 = [[0.7, 0, 0.45], [0, 2.1, 0.55], [0, 0, 1]]
    path = tmp_path / 'intrinsics.json'
    path.write_text(json.dumps(K2))
    out2 = pred.predict(cur, previous=prev, intrinsics=str(path))
    np.testing.assert_allclose(out2.disp_net, reference_disp(model, cur, prev, K2), rtol=1e-4,
                               atol=1e-5)
    assert np.abs(out2.disp_net - out.disp_net).max() > 1e-3  # the intrinsics are used
    # other input sizes: both frames are resized to the network size
    big = pred.predict(cv2.resize(cur, (150, 100)), previous=cv2.resize(prev, (150, 100)))
    assert big.disp.shape == (100, 150) and big.disp_net.shape == (H, W)


def test_stream_first_frame_falls_back_and_later_frames_use_the_cost_volume(multi):
    model, pred, _ = multi
    frames = [textured(shift=2 * i) for i in range(3)]
    streamed = list(pred.stream(frames))
    fallback = [pred.predict(f) for f in frames]  # no previous frame: single-frame mode
    with torch.no_grad():  # ManyDepth's own single-frame mode: a bare image tensor
        sig = model.predict_disparities(to_tensor(frames[0]))[0]
    np.testing.assert_allclose(fallback[0].disp_net,
                               disp_to_depth(sig, 0.1, 100.0)[0][0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(streamed[0].disp, fallback[0].disp, rtol=1e-5, atol=1e-6)
    for i in (1, 2):
        pair = pred.predict(frames[i], previous=frames[i - 1])
        np.testing.assert_allclose(streamed[i].disp, pair.disp, rtol=1e-4, atol=1e-5)
        rel = np.abs(streamed[i].disp - fallback[i].disp) / fallback[i].disp
        assert rel.mean() > 0.005, rel.mean()  # the cost volume changes the depth (~2 %)
    # batches of consecutive frames give the same as frame by frame; reset() starts anew
    pred.reset()
    batch = pred.predict_next(np.stack(frames))
    np.testing.assert_allclose(batch.disp, np.stack([s.disp for s in streamed]), rtol=1e-4,
                               atol=1e-5)
    pred.reset()
    np.testing.assert_allclose(pred.predict_next(frames[2]).disp, fallback[2].disp, rtol=1e-5,
                               atol=1e-6)


def test_a_batch_with_missing_previous_frames(multi):
    _, pred, _ = multi
    a, b, c = (textured(seed=s) for s in (1, 2, 3))
    out = pred.predict([a, b], previous=[None, c])
    np.testing.assert_allclose(out.disp[0], pred.predict(a).disp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.disp[1], pred.predict(b, previous=c).disp, rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ValueError, match='previous: 1 frames for 2 images'):
        pred.predict([a, b], previous=[c])


def test_teacher_prediction_is_the_single_frame_teacher(multi):
    model, pred, _ = multi
    img = textured(seed=4)
    with torch.no_grad():
        ref = model.teacher(to_tensor(img), mode='predict')[0]['pred_disp'][0].numpy()
    np.testing.assert_allclose(pred.predict_teacher(img).disp, ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(pred.predict_teacher(img).disp, pred.predict(img).disp)


def test_prodepth_pair_prediction_equals_the_model(tmp_path):
    model = tiny_multiframe('ProDepth')  # PCVM: the teacher and its uncertainty head run too
    pred = DepthPredictor(config_file(tmp_path, 'ProDepth'),
                          save_checkpoint(model, tmp_path / 'pro.pth'))
    assert pred.multi_frame and isinstance(pred.model, ProDepth)
    cur, prev = textured(shift=3), textured()
    np.testing.assert_allclose(pred.predict(cur, previous=prev).disp_net,
                               reference_disp(model, cur, prev), rtol=1e-4, atol=1e-5)
    first = next(pred.stream([cur]))
    np.testing.assert_allclose(first.disp, pred.predict(cur).disp, rtol=1e-5, atol=1e-6)


def test_intrinsics_loading_and_clear_errors(tmp_path):
    np.testing.assert_allclose(load_intrinsics(None)[:3, :3], KITTI_K)
    path = tmp_path / 'k.json'
    path.write_text('[\n    [0.58, 0, 0.5],\n    [0, 1.92, 0.5],\n    [0, 0, 1.0]\n]')
    np.testing.assert_allclose(load_intrinsics(path), load_intrinsics(None), rtol=1e-6)
    np.testing.assert_allclose(load_intrinsics(torch.tensor(KITTI_K)), load_intrinsics(None),
                               rtol=1e-6)
    with pytest.raises(FileNotFoundError, match='intrinsics file .*nope.json does not exist'):
        load_intrinsics(tmp_path / 'nope.json')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"fx": 0.58')
    with pytest.raises(ValueError, match='bad.json: not a JSON file'):
        load_intrinsics(bad)
    bad.write_text('[[0.58, 0, 0.5], [0, 1.92, 0.5]]')
    with pytest.raises(ValueError, match=r'bad.json: intrinsics must be a normalised 3x3 or '
                                         r'4x4 matrix.*got \(2, 3\)'):
        load_intrinsics(bad)
    bad.write_text('[[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]]')  # pixel intrinsics
    with pytest.raises(ValueError, match=r'bad.json: principal point cx/W=609.6.*normalised'):
        load_intrinsics(bad)
    with pytest.raises(ValueError, match='focal lengths'):
        load_intrinsics([[-0.5, 0, 0.5], [0, 1.9, 0.5], [0, 0, 1]])
    with pytest.raises(ValueError, match='last row'):
        load_intrinsics([[0.5, 0, 0.5], [0, 1.9, 0.5], [0, 1, 1]])
    with pytest.raises(ValueError, match='bad.json: principal point'):
        DepthPredictor({'model': dict(type='MonoDepth')}, None, size=(H, W), intrinsics=bad)


def test_errors_of_single_frame_models_and_incomplete_checkpoints(multi, tmp_path):
    model, pred, tmp = multi
    with pytest.warns(UserWarning, match='randomly initialised'):
        mono = DepthPredictor({'model': dict(type='MonoDepth', encoder=TINY, pose_encoder=TINY,
                                             depth_decoder=DEC)}, None, size=(H, W))
    img = textured()
    assert not mono.multi_frame
    with pytest.raises(ValueError, match='previous= needs a multi-frame model.*MonoDepth'):
        mono.predict(img, previous=img)
    with pytest.raises(ValueError, match='MonoDepth is a single-frame model without a teacher'):
        mono.predict_teacher(img)
    # a single-frame model streams frame by frame, unchanged
    np.testing.assert_array_equal(next(mono.stream([img])).disp, mono.predict(img).disp)
    # a multi-frame checkpoint needs every network, not only the depth ones
    teacher_only = {k: v for k, v in model.state_dict().items() if k.startswith('teacher.')}
    path = tmp_path / 'teacher_only.pth'
    torch.save({'state_dict': teacher_only}, path)
    with pytest.raises(ValueError, match=r'teacher_only.pth: not a checkpoint of this depth '
                                         r'model \(ManyDepth\); missing \d+ network keys'):
        DepthPredictor(config_file(tmp), path)
    with pytest.raises(ValueError, match=r'previous must be \(1, 3, H, W\)'):
        pred.predict_tensor(to_tensor(img), previous=torch.zeros(2, 3, H, W))
