"""RenderMetric, psnr and masked_ssim (geo3d.evaluation.render) against closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.evaluation import RenderMetric, masked_ssim, psnr
from geo3d.registry import METRICS


def images(f: int = 2, h: int = 12, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(f, 3, h, w, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64) * 0.8 + 0.1


@pytest.mark.parametrize('e', [0.5, 0.1, 0.01, 1e-3])
def test_psnr_of_a_uniform_error(e: float) -> None:
    gt = images()
    assert torch.allclose(psnr(gt + e, gt), torch.full((2,), -20 * math.log10(e),
                                                       dtype=torch.float64), atol=1e-9)
    # data range L: 10 log10(L^2 / e^2)
    assert torch.allclose(psnr(gt + e, gt, data_range=255.0),
                          torch.full((2,), 20 * math.log10(255.0 / e), dtype=torch.float64))


def test_psnr_mask_and_per_frame_values() -> None:
    gt = images()
    pred = gt.clone()
    pred[0] += 0.1
    pred[1, :, :, :8] += 0.2          # frame 1: error 0.2 on the left half, 0 on the right
    mask = torch.ones(2, 1, 12, 16, dtype=torch.bool)
    mask[1, :, :, 8:] = False
    got = psnr(pred, gt, mask)
    assert torch.allclose(got, torch.tensor([20.0, -20 * math.log10(0.2)], dtype=torch.float64))
    # unmasked: frame 1 MSE is the mean over both halves = 0.02
    assert math.isclose(float(psnr(pred, gt)[1]), -10 * math.log10(0.02), rel_tol=1e-12)
    assert math.isclose(float(psnr(gt, gt)[0]), 100.0)     # MSE floored at 1e-10
    assert math.isnan(float(psnr(pred, gt, torch.zeros_like(mask))[0]))
    with pytest.raises(ValueError, match='pred and target'):
        psnr(pred, gt[:, :2])
    with pytest.raises(ValueError, match='mask must be'):
        psnr(pred, gt, mask[:, :, :5])


def test_ssim_closed_form_for_constant_images() -> None:
    # constant images a, b: sigma = 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) at every pixel
    a, b = 0.3, 0.55
    x = torch.full((1, 3, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), b, dtype=torch.float64)
    c1 = 0.01 ** 2
    expect = (2 * a * b + c1) / (a * a + b * b + c1)
    assert math.isclose(float(masked_ssim(x, y)[0]), expect, rel_tol=1e-6)  # float32 window
    img = images(1, 20, 20)
    assert math.isclose(float(masked_ssim(img, img)[0]), 1.0, rel_tol=1e-9)
    # masked: only the masked pixels count
    noisy = img.clone()
    noisy[..., :, 10:] = torch.rand(1, 3, 20, 10, dtype=torch.float64)
    mask = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    mask[..., :, :4] = True           # far from the noisy half (window 11: 5 px reach)
    assert math.isclose(float(masked_ssim(noisy, img, mask)[0]), 1.0, rel_tol=1e-9)
    assert float(masked_ssim(noisy, img)[0]) < 0.9
    with pytest.raises(ValueError, match='window_size'):
        masked_ssim(x, y, window_size=4)


def prediction(name: str, errors: list[float], holes: bool = False) -> dict:
    f = len(errors)
    gt = images(f, seed=len(name))
    pred = gt + torch.tensor(errors, dtype=torch.float64)[:, None, None, None]
    gt_depth = torch.full((f, 1, 12, 16), 2.0, dtype=torch.float64)
    if holes:  # no measurement on the right half, where the render is badly wrong
        gt_depth[..., 8:] = 0
        pred[..., 8:] += 0.5
    return {'name': name, 'pred_rgb': pred, 'gt_rgb': gt, 'gt_depth': gt_depth,
            'pred_depth': gt_depth + 0.1, 'alpha': torch.ones(f, 1, 12, 16)}


def test_render_metric_means_per_scene_and_mask() -> None:
    metric = METRICS.build(dict(type='RenderMetric'))
    assert isinstance(metric, RenderMetric)
    metric.process({}, [prediction('a', [0.1, 0.01])])
    metric.process({}, [prediction('b', [0.1], holes=True)])
    out = metric.evaluate(2)          # the runner's call: size = number of scenes (samples)
    out = {k[len('render/'):]: v for k, v in out.items()}
    p = [20.0, 40.0, 20.0]
    assert math.isclose(out['psnr'], sum(p) / 3, rel_tol=1e-9)
    assert math.isclose(out['psnr/a'], 30.0, rel_tol=1e-9)
    assert math.isclose(out['psnr/b'], 20.0, rel_tol=1e-9)
    assert math.isclose(out['psnr_scene_mean'], 25.0, rel_tol=1e-9)
    assert out['num_frames'] == 3.0
    assert math.isclose(out['depth_l1'], 0.1, rel_tol=1e-6) and out['alpha'] == 1.0
    assert 0 < out['ssim'] <= 1
    # mask='none' counts the unmeasured (wrong) half of scene b
    unmasked = RenderMetric(mask='none', per_scene=False, ssim_window=0)
    unmasked.process({}, [prediction('b', [0.1], holes=True)])
    res = unmasked.compute_metrics(unmasked.results)
    assert res['num_frames'] == 1.0
    assert res['psnr'] < 15.0 and 'psnr/b' not in res and 'ssim' not in res


def test_render_metric_errors() -> None:
    metric = RenderMetric()
    bad = prediction('a', [0.1])
    del bad['gt_depth']
    with pytest.raises(KeyError, match="'gt_depth'"):
        metric.process({}, [bad])
    with pytest.raises(KeyError, match="'pred_rgb'"):
        metric.process({}, [{'name': 'x'}])
    with pytest.raises(ValueError, match='mask'):
        RenderMetric(mask='alpha')
    with pytest.raises(ValueError, match='ssim_window'):
        RenderMetric(ssim_window=8)
