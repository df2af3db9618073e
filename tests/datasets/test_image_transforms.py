"""Multi-frame image transforms: one jitter draw for all frames (vs torchvision and closed forms),
seeding, flip geometry (principal point, stereo sign), pyramid intrinsics vs the closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from PIL import Image
from torchvision.transforms import ColorJitter

from geo3d.datasets.transforms.image import (ColorJitterParams, MultiFrameColorJitter,
                                             MultiFrameRandomFlip, MultiFrameResizePyramid,
                                             PackMultiFrameInputs, apply_color_jitter,
                                             flip_intrinsics, intrinsics_pyramid_stack,
                                             resize_pyramid, sample_color_jitter_params)
from geo3d.registry import TRANSFORMS

K_KITTI = np.array([[0.5809, 0.001, 0.4908, 0], [0, 1.9241, 0.4609, 0], [0, 0, 1, 0],
                    [0, 0, 0, 1]])


def frames(n: int = 3, h: int = 12, w: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------
# colour jitter

def test_one_draw_for_all_frames_and_scales() -> None:
    f = frames()
    same = torch.cat([f, f[:1]])  # frame 3 is a copy of frame 0
    data = {'color': [same, same[..., ::2, ::2].contiguous()]}
    out = MultiFrameColorJitter(prob=1.0, seed=0)(data)
    params = out['color_aug_params']
    assert isinstance(params, ColorJitterParams) and sorted(params.order) == [0, 1, 2, 3]
    aug = out['color_aug']
    assert not torch.allclose(aug[0], same)
    torch.testing.assert_close(aug[0][3], aug[0][0], rtol=0, atol=0)
    for s in range(2):  # every frame of every scale got exactly this draw
        for i in range(4):
            torch.testing.assert_close(aug[s][i], apply_color_jitter(data['color'][s][i],
                                                                     params))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_jitter_matches_torchvision_colorjitter(seed: int) -> None:
    """The same draw through torchvision's (v1) ColorJitter gives the same image."""
    rng = dict(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.8, 1.2),
               hue=(-0.1, 0.1))
    img = frames(1, seed=seed)[0]
    torch.manual_seed(seed)
    expected = ColorJitter(**rng)(img)
    torch.manual_seed(seed)
    order, b, c, s, h = ColorJitter.get_params(*rng.values())
    params = ColorJitterParams(tuple(order.tolist()), b, c, s, h)
    torch.testing.assert_close(apply_color_jitter(img, params), expected, atol=1e-5, rtol=0)


def test_brightness_contrast_closed_form() -> None:
    img = frames(2, seed=4).double()
    out = apply_color_jitter(img, ColorJitterParams((0, 1, 2, 3), 1.3, None, None, None))
    torch.testing.assert_close(out, (img * 1.3).clamp(0, 1))
    out = apply_color_jitter(img, ColorJitterParams((1, 0, 2, 3), None, 0.7, None, None))
    grey = (0.2989 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]).mean((-2, -1))
    ref = (0.7 * img + 0.3 * grey[:, None, None, None]).clamp(0, 1)  # per-frame mean grey
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


def test_jitter_determinism_and_probability() -> None:
    def draws(seed: int) -> list:
        t = MultiFrameColorJitter(prob=1.0, seed=seed)
        return [t({'color': [frames()]})['color_aug_params'] for _ in range(3)]

    a, b, c = draws(5), draws(5), draws(6)
    assert a == b and a != c
    assert len(set(a)) == 3  # a stream, not one repeated draw
    p = sample_color_jitter_params(np.random.default_rng(0), brightness=0.2, contrast=None,
                                   saturation=None, hue=0.05)
    assert 0.8 <= p.brightness <= 1.2 and -0.05 <= p.hue <= 0.05 and p.contrast is None
    f = frames()
    out = MultiFrameColorJitter(prob=0.0)({'color': [f]})
    assert out['color_aug'][0] is f and out['color_aug_params'] is None
    half = MultiFrameColorJitter(prob=0.5, seed=9)
    hits = sum(half({'color': [f]})['color_aug_params'] is not None for _ in range(20))
    assert 0 < hits < 20


def test_jitter_bad_arguments() -> None:
    with pytest.raises(ValueError, match='prob must be in'):
        MultiFrameColorJitter(prob=1.5)
    with pytest.raises(ValueError, match='hue range'):
        MultiFrameColorJitter(hue=(-0.7, 0.1))
    with pytest.raises(ValueError, match='brightness must be non-negative'):
        MultiFrameColorJitter(brightness=-0.1)
    with pytest.raises(KeyError, match="needs 'color'"):
        MultiFrameColorJitter(prob=1.0)({})
    with pytest.raises(ValueError, match=r'\(\.\.\., 3, H, W\)'):
        apply_color_jitter(torch.rand(4, 5, 5), ColorJitterParams((0, 1, 2, 3), 1.1, None,
                                                                   None, None))


# ------------------------------------------------------------------------------------------------
# flip

def test_flip_intrinsics_closed_form() -> None:
    f = flip_intrinsics(K_KITTI)
    assert f[0, 2] == pytest.approx(1 - 0.4908) and f[0, 1] == pytest.approx(-0.001)
    np.testing.assert_array_equal(np.delete(f.ravel(), [1, 2]), np.delete(K_KITTI.ravel(),
                                                                          [1, 2]))
    np.testing.assert_allclose(flip_intrinsics(f), K_KITTI)  # an involution
    mono = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(flip_intrinsics(mono), mono)  # Monodepth2's K is unchanged
    torch.testing.assert_close(flip_intrinsics(torch.as_tensor(K_KITTI)),
                               torch.as_tensor(f))
    # geometry: the mirrored point (-X, Y, Z) lands at W - u in every pyramid level
    X = np.array([1.3, -0.4, 7.0])
    for s in range(4):
        K = intrinsics_pyramid_stack(K_KITTI, 192, 640, 4)[0][s].double().numpy()[:3, :3]
        Kf = intrinsics_pyramid_stack(f, 192, 640, 4)[0][s].double().numpy()[:3, :3]
        u = K @ X
        uf = Kf @ (X * [-1, 1, 1])
        w = 640 // 2 ** s
        assert uf[0] / uf[2] == pytest.approx(w - u[0] / u[2], abs=1e-4)
        assert uf[1] / uf[2] == pytest.approx(u[1] / u[2], abs=1e-4)


def test_random_flip_applies_to_everything() -> None:
    imgs = []
    for col in (2, 7):
        a = np.zeros((4, 10, 3), np.uint8)
        a[:, col] = 255
        imgs.append(Image.fromarray(a))
    stereo = np.eye(4, dtype=np.float32)
    stereo[0, 3] = -0.1
    gt = np.arange(40, dtype=np.float32).reshape(4, 10)
    data = {'img': imgs, 'K_norm': K_KITTI.copy(), 'stereo_T': stereo, 'gt_depth': gt}
    out = MultiFrameRandomFlip(prob=1.0)(data)
    assert out['flip'] is True
    for im, col in zip(out['img'], (2, 7)):
        a = np.asarray(im)
        assert a[:, 9 - col].min() == 255 and a.sum() == 255 * 4 * 3
    assert out['stereo_T'][0, 3] == pytest.approx(0.1)
    np.testing.assert_array_equal(out['gt_depth'], gt[:, ::-1])
    np.testing.assert_allclose(out['K_norm'], flip_intrinsics(K_KITTI))
    keep = MultiFrameRandomFlip(prob=1.0, flip_principal_point=False)(
        {'img': imgs, 'K_norm': K_KITTI.copy()})
    np.testing.assert_array_equal(keep['K_norm'], K_KITTI)
    none = MultiFrameRandomFlip(prob=0.0)({'img': imgs, 'K_norm': K_KITTI.copy()})
    assert none['flip'] is False and none['img'][0] is imgs[0]
    # already resized tensors are flipped too
    c = frames(2)
    out = MultiFrameRandomFlip(prob=1.0)({'color': [c], 'color_aug': [c + 1]})
    torch.testing.assert_close(out['color'][0], c.flip(-1))
    torch.testing.assert_close(out['color_aug'][0], (c + 1).flip(-1))


def test_flip_seed_determinism() -> None:
    def seq(seed: int) -> list[bool]:
        t = MultiFrameRandomFlip(prob=0.5, seed=seed)
        return [t({'img': []})['flip'] for _ in range(16)]

    assert seq(3) == seq(3) and seq(3) != seq(4)
    assert 0 < sum(seq(3)) < 16


# ------------------------------------------------------------------------------------------------
# resize pyramid and intrinsics

def test_intrinsics_pyramid_closed_form() -> None:
    for h, w in ((192, 640), (375, 1242)):
        K, inv_K = intrinsics_pyramid_stack(K_KITTI, h, w, 4)
        assert K.shape == inv_K.shape == (4, 4, 4) and K.dtype == torch.float32
        for s in range(4):
            ws, hs = w // 2 ** s, h // 2 ** s  # integer level sizes, as Monodepth2
            ref = np.array([[K_KITTI[0, 0] * ws, K_KITTI[0, 1] * ws, K_KITTI[0, 2] * ws, 0],
                            [0, K_KITTI[1, 1] * hs, K_KITTI[1, 2] * hs, 0],
                            [0, 0, 1, 0], [0, 0, 0, 1]])
            np.testing.assert_allclose(K[s].numpy(), ref, rtol=1e-6)
            np.testing.assert_allclose(inv_K[s].double().numpy() @ ref, np.eye(4), atol=1e-6)


def test_resize_pyramid_shapes_values_and_errors() -> None:
    imgs = [Image.new('RGB', (96, 32), (10 * i, 100, 200)) for i in range(3)]
    out = MultiFrameResizePyramid(16, 48, num_scales=3)({'img': imgs, 'K_norm': K_KITTI})
    assert 'img' not in out
    assert [tuple(c.shape) for c in out['color']] == [(3, 3, 16, 48), (3, 3, 8, 24),
                                                      (3, 3, 4, 12)]
    for i in range(3):  # flat images stay flat at every level
        for c in out['color']:
            torch.testing.assert_close(c[i, :, 0, 0], torch.tensor([10 * i, 100, 200]) / 255.)
            assert float(c[i].std((-2, -1)).max()) < 1e-6
    assert out['K'].shape == (3, 4, 4)
    t = resize_pyramid([torch.zeros(3, 32, 96, dtype=torch.uint8)], 16, 48, 2, 'bilinear')
    assert t[1].shape == (1, 3, 8, 24) and t[0].dtype == torch.float32
    with pytest.raises(ValueError, match="'lanczos' resizing needs PIL"):
        resize_pyramid([torch.zeros(3, 8, 8)], 4, 4, 1, 'lanczos')
    with pytest.raises(ValueError, match='num_scales=5 does not fit'):
        MultiFrameResizePyramid(8, 32, num_scales=5)
    with pytest.raises(KeyError, match="needs 'img'"):
        MultiFrameResizePyramid(8, 32)({})


def test_pack_and_collate() -> None:
    imgs = [Image.new('RGB', (24, 8), (i, i, i)) for i in range(2)]
    pipeline = [TRANSFORMS.build(dict(type='MultiFrameRandomFlip', prob=0.5, seed=0)),
                TRANSFORMS.build(dict(type='MultiFrameResizePyramid', height=8, width=16,
                                      num_scales=2)),
                TRANSFORMS.build(dict(type='MultiFrameColorJitter', seed=1)),
                PackMultiFrameInputs()]
    samples = []
    for k, shape in enumerate([(8, 24), (9, 20)]):  # ground truth sizes may differ
        data = {'img': list(imgs), 'K_norm': K_KITTI.copy(), 'stereo_T': np.eye(4),
                'gt_depth': np.ones(shape, np.float32), 'index': k, 'frame_ids': (0, 's')}
        for t in pipeline:
            data = t(data)
        samples.append(data)
    s = samples[0]
    assert set(s['inputs']) == {'color', 'color_aug', 'K', 'inv_K', 'stereo_T'}
    assert s['data_samples'].gt_depth.shape == (1, 8, 24)
    assert s['data_samples'].metainfo['frame_ids'] == (0, 's')
    batch = default_collate(samples)
    assert [tuple(c.shape) for c in batch['inputs']['color']] == [(2, 2, 3, 8, 16),
                                                                  (2, 2, 3, 4, 8)]
    assert batch['inputs']['K'].shape == (2, 2, 4, 4)
    assert batch['inputs']['stereo_T'].shape == (2, 4, 4)
    assert [d.metainfo['index'] for d in batch['data_samples']] == [0, 1]
    pbatch = pseudo_collate(samples)
    assert len(pbatch['inputs']['color'][0]) == 2 and len(pbatch['data_samples']) == 2
