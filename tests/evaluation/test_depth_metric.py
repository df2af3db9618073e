"""DepthMetric / compute_depth_errors: hand-computed values, Eigen crop indices, median scaling,
per-image averaging, resizing against an explicit bilinear loop, and a re-statement of
Monodepth2's evaluation loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geo3d.evaluation.depth import (DEPTH_METRIC_NAMES, DepthMetric, cityscapes_crop,
                                    compute_depth_errors, evaluate_depth_map, eval_mask,
                                    garg_crop_mask, resize_disparity)
from geo3d.registry import METRICS


# --- the 7 metrics by hand -----------------------------------------------------------------------

def test_compute_depth_errors_by_hand_2x2():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    pred = np.array([[1.0, 1.0], [6.0, 8.0]])
    e = compute_depth_errors(gt, pred)
    # |g - p| = 0, 1, 2, 0; |g - p| / g = 0, 1/2, 1/2, 0
    assert e['abs_rel'] == pytest.approx(0.25)
    # (g - p)^2 / g = 0, 1/2, 4/4, 0
    assert e['sq_rel'] == pytest.approx(1.5 / 4)
    assert e['rmse'] == pytest.approx(math.sqrt(5 / 4))
    assert e['rmse_log'] == pytest.approx(math.sqrt((math.log(2) ** 2 + math.log(1.5) ** 2) / 4))
    # max(g/p, p/g) = 1, 2, 1.5, 1 vs 1.25, 1.5625, 1.953125
    assert e['a1'] == pytest.approx(0.5)
    assert e['a2'] == pytest.approx(0.75)
    assert e['a3'] == pytest.approx(0.75)
    assert tuple(e) == DEPTH_METRIC_NAMES


def test_compute_depth_errors_rejects_bad_input():
    with pytest.raises(ValueError, match='no valid pixels'):
        compute_depth_errors(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match='differ in shape'):
        compute_depth_errors(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match='pred must be finite and > 0'):
        compute_depth_errors(np.ones(3), np.array([1.0, 0.0, 1.0]))


# --- masks and crops -----------------------------------------------------------------------------

def test_garg_crop_indices_closed_form():
    m = garg_crop_mask(375, 1242)
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    # int(0.40810811 * 375) = 153, int(0.99189189 * 375) = 371, int(0.03594771 * 1242) = 44,
    # int(0.96405229 * 1242) = 1197 (Monodepth2: gt[153:371, 44:1197])
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (153, 371, 44, 1197)
    assert m.sum() == (371 - 153) * (1197 - 44)
    # another KITTI size, from the formula
    h, w = 370, 1224
    m = garg_crop_mask(h, w)
    r0, r1 = int(0.40810811 * h), int(0.99189189 * h)
    c0, c1 = int(0.03594771 * w), int(0.96405229 * w)
    expected = np.zeros((h, w), bool)
    expected[r0:r1, c0:c1] = True
    np.testing.assert_array_equal(m, expected)


def test_eval_masks_by_split():
    gt = np.full((375, 1242), 10.0)
    gt[200, 100] = 90.0   # inside the crop, beyond max_depth
    gt[10, 10] = 5.0      # outside the crop
    gt[300, 600] = 0.0    # no LiDAR
    eigen = eval_mask(gt, 'eigen')
    assert not eigen[200, 100] and not eigen[10, 10] and not eigen[300, 600]
    assert eigen.sum() == (371 - 153) * (1197 - 44) - 2
    none = eval_mask(gt, 'none')
    assert none[200, 100] and none[10, 10] and not none[300, 600]   # no crop, no GT cap
    assert cityscapes_crop(768, 2048) == (slice(256, 768), slice(192, 1856))
    with pytest.raises(ValueError, match='eval_split must be one of'):
        eval_mask(gt, 'garg')


def test_cityscapes_cuts_bottom_quarter_then_crops():
    gt = np.full((1024, 2048), 20.0, np.float32)
    gt[800:] = 1.0            # bottom 25 % (ego car) is cut before anything else
    gt[:256] = 1.0            # top third of the remaining 768 rows is cropped away
    gt[300:400, :192] = 1.0   # left margin is cropped away
    pred = np.full((8, 16), 1 / 20.0, np.float32)   # disparity of 20 m everywhere
    e, ratio = evaluate_depth_map(gt, pred, 'disp', 'cityscapes', median_scaling=True)
    assert ratio == pytest.approx(1.0)
    assert e['abs_rel'] == pytest.approx(0.0, abs=1e-6) and e['a1'] == 1.0


# --- resizing ------------------------------------------------------------------------------------

def slow_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear with edge clamping, one output pixel at a time (float64)."""
    h, w = img.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        y = min(max((i + 0.5) * h / out_h - 0.5, 0.0), h - 1)
        y0 = int(math.floor(y)); y1 = min(y0 + 1, h - 1); fy = y - y0
        for j in range(out_w):
            x = min(max((j + 0.5) * w / out_w - 0.5, 0.0), w - 1)
            x0 = int(math.floor(x)); x1 = min(x0 + 1, w - 1); fx = x - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                         + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out


def test_resize_is_half_pixel_bilinear():
    rng = np.random.default_rng(0)
    disp = rng.uniform(0.01, 1.0, (6, 10)).astype(np.float32)
    up = resize_disparity(disp, 15, 31)
    np.testing.assert_allclose(up, slow_bilinear(disp.astype(np.float64), 15, 31), atol=1e-5)
    down = resize_disparity(rng.uniform(0.01, 1.0, (15, 31)).astype(np.float32), 7, 9)
    assert down.shape == (7, 9) and down.dtype == np.float32


def test_depth_and_disparity_inputs_agree():
    rng = np.random.default_rng(1)
    gt = rng.uniform(1, 70, (40, 120)).astype(np.float32)
    depth = rng.uniform(2, 50, (8, 24)).astype(np.float32)
    a, ra = evaluate_depth_map(gt, depth, 'depth', 'none')
    b, rb = evaluate_depth_map(gt, 1.0 / depth, 'disp', 'none')
    assert ra == pytest.approx(rb)
    for k in DEPTH_METRIC_NAMES:
        assert a[k] == pytest.approx(b[k], rel=1e-6)
    # the *disparity* is interpolated: differs from interpolating depth
    c, _ = evaluate_depth_map(gt, 1.0 / resize_disparity(depth, 40, 120), 'disp', 'none')
    assert c['abs_rel'] != pytest.approx(a['abs_rel'], rel=1e-4)


# --- scaling -------------------------------------------------------------------------------------

def test_median_scaling_makes_scaled_prediction_perfect():
    rng = np.random.default_rng(2)
    gt = rng.uniform(2, 60, (20, 30)).astype(np.float32)
    e, ratio = evaluate_depth_map(gt, 0.25 * gt, 'depth', 'none', median_scaling=True)
    assert ratio == pytest.approx(4.0, rel=1e-6)
    assert e['abs_rel'] == pytest.approx(0, abs=1e-6) and e['rmse'] == pytest.approx(0, abs=1e-4)
    assert e['a1'] == 1.0
    unscaled, none_ratio = evaluate_depth_map(gt, 0.25 * gt, 'depth', 'none',
                                              median_scaling=False)
    assert none_ratio is None and unscaled['abs_rel'] == pytest.approx(0.75, rel=1e-6)


def test_fixed_scale_then_clamp():
    gt = np.array([[10.0, 10.0]], np.float32)
    # depth 20 -> x5.4 = 108 -> clamped to 80; depth 1e-5 -> 5.4e-5 -> clamped to 1e-3
    e, ratio = evaluate_depth_map(gt, np.array([[20.0, 1e-5]], np.float32), 'depth', 'none',
                                  median_scaling=False, scale_factor=5.4)
    assert ratio is None
    assert e['abs_rel'] == pytest.approx((70 / 10 + (10 - 1e-3) / 10) / 2, rel=1e-5)


# --- reference re-statement (Monodepth2's evaluate loop, float32) --------------------------------

def monodepth2_loop(gts, disps, median=True):
    import cv2
    errors, ratios = [], []
    for gt, disp in zip(gts, disps):
        h, w = gt.shape
        pd = 1 / cv2.resize(disp, (w, h))
        mask = np.logical_and(gt > 1e-3, gt < 80)
        crop = np.array([0.40810811 * h, 0.99189189 * h, 0.03594771 * w,
                         0.96405229 * w]).astype(np.int32)
        cm = np.zeros(mask.shape)
        cm[crop[0]:crop[1], crop[2]:crop[3]] = 1
        mask = np.logical_and(mask, cm)
        p, g = pd[mask], gt[mask]
        if median:
            r = np.median(g) / np.median(p)
            ratios.append(r)
            p *= r
        p[p < 1e-3] = 1e-3
        p[p > 80] = 80
        t = np.maximum(g / p, p / g)
        errors.append([np.mean(np.abs(g - p) / g), np.mean((g - p) ** 2 / g),
                       np.sqrt(np.mean((g - p) ** 2)),
                       np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
                       (t < 1.25).mean(), (t < 1.25 ** 2).mean(), (t < 1.25 ** 3).mean()])
    return np.array(errors).mean(0), np.array(ratios)


def test_metric_matches_monodepth2_loop():
    rng = np.random.default_rng(3)
    gts, disps, samples = [], [], []
    for shape in [(75, 248), (74, 244), (75, 250)]:
        gt = rng.uniform(1, 85, shape).astype(np.float32)
        gt[rng.random(shape) < 0.7] = 0     # sparse LiDAR
        disp = rng.uniform(0.01, 1.0, (16, 48)).astype(np.float32)
        gts.append(gt)
        disps.append(disp)
        samples.append({'gt_depth': torch.from_numpy(gt),
                        'pred_disp': torch.from_numpy(disp)[None]})
    metric = DepthMetric()
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    ref, ratios = monodepth2_loop(gts, disps)
    for k, v in zip(DEPTH_METRIC_NAMES, ref):
        assert out[k] == pytest.approx(float(v), rel=1e-5), k
    assert out['ratio_median'] == pytest.approx(float(np.median(ratios)), rel=1e-6)
    assert out['ratio_std'] == pytest.approx(float(np.std(ratios / np.median(ratios))), rel=1e-5)
    assert out['num_images'] == 3 and out['num_skipped'] == 0


def test_per_image_mean_is_not_pooled():
    # image A: one valid pixel, abs_rel 1/2; image B: three valid pixels, perfect
    a = {'gt_depth': np.array([[2.0, 0.0], [0.0, 0.0]]), 'pred_depth': np.array([[1.0, 1.0],
                                                                                  [1.0, 1.0]])}
    b = {'gt_depth': np.array([[0.0, 4.0], [4.0, 4.0]]), 'pred_depth': np.full((2, 2), 4.0)}
    metric = DepthMetric(eval_split='none', median_scaling=False)
    metric.process({}, [a, b])
    out = metric.compute_metrics(metric.results)
    per_image = (0.5 + 0.0) / 2
    pooled = (0.5 + 0 + 0 + 0) / 4
    assert out['abs_rel'] == pytest.approx(per_image)
    assert out['abs_rel'] != pytest.approx(pooled)
    assert out['a1'] == pytest.approx((0 + 1) / 2)   # pooled would be 3/4
    assert 'ratio_median' not in out


def test_sigmoid_output_converted_with_disp_to_depth():
    rng = np.random.default_rng(4)
    gt = rng.uniform(1, 70, (32, 96)).astype(np.float32)
    sigma = torch.rand(1, 1, 8, 24) * 0.9 + 0.05
    scaled = 1 / 100 + (1 / 0.1 - 1 / 100) * sigma   # Monodepth2's disp_to_depth by hand
    m1 = DepthMetric(eval_split='none', sigmoid_depth_range=(0.1, 100))
    m2 = DepthMetric(eval_split='none')
    m1.process({}, [{'gt_depth': gt, 'pred_disp': sigma}])
    m2.process({}, [{'gt_depth': gt, 'pred_disp': scaled}])
    o1, o2 = m1.compute_metrics(m1.results), m2.compute_metrics(m2.results)
    for k in DEPTH_METRIC_NAMES:
        assert o1[k] == pytest.approx(o2[k], rel=1e-5)


# --- skipping, registry, errors ------------------------------------------------------------------

def test_image_without_valid_pixels_is_skipped_with_warning():
    good = {'gt_depth': np.full((4, 4), 5.0), 'pred_depth': np.full((4, 4), 5.0)}
    empty = {'gt_depth': np.zeros((4, 4)), 'pred_depth': np.ones((4, 4)), 'img_path': 'x/empty.png'}
    metric = DepthMetric(eval_split='none')
    with pytest.warns(UserWarning, match='empty.png skipped'):
        metric.process({}, [good, empty])
    out = metric.compute_metrics(metric.results)
    assert out['num_images'] == 1 and out['num_skipped'] == 1 and out['abs_rel'] == 0
    only_empty = DepthMetric(eval_split='none')
    with pytest.warns(UserWarning):
        only_empty.process({}, [empty])
    with pytest.raises(ValueError, match='none of the 1 images'):
        only_empty.compute_metrics(only_empty.results)


def test_registered_with_prefix_through_evaluate():
    metric = METRICS.build(dict(type='DepthMetric', eval_split='none'))
    metric.process({}, [{'gt_depth': np.full((4, 4), 5.0), 'pred_depth': np.full((2, 2), 2.5)}])
    out = metric.evaluate(1)
    assert out['depth/abs_rel'] == pytest.approx(0) and out['depth/ratio_median'] == 2.0


def test_bad_configuration_and_samples_raise():
    with pytest.raises(ValueError, match="eval_split must be one of"):
        DepthMetric(eval_split='kitti')
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        DepthMetric(min_depth=80, max_depth=1)
    with pytest.raises(ValueError, match='sigmoid_depth_range'):
        DepthMetric(sigmoid_depth_range=(10, 1))
    metric = DepthMetric()
    with pytest.raises(KeyError, match='gt_depth'):
        metric.process({}, [{'pred_disp': np.ones((2, 2))}])
    with pytest.raises(KeyError, match='exactly one of'):
        metric.process({}, [{'gt_depth': np.ones((2, 2)), 'pred_disp': np.ones((2, 2)),
                             'pred_depth': np.ones((2, 2))}])
    with pytest.raises(ValueError, match=r'a\.png.*must be > 0'):
        metric.process({}, [{'gt_depth': np.ones((2, 2)), 'pred_disp': -np.ones((2, 2)),
                             'img_path': 'a.png'}])
    with pytest.raises(ValueError, match='single \\(H, W\\) map'):
        metric.process({}, [{'gt_depth': np.ones((2, 2)), 'pred_disp': np.ones((2, 2, 2))}])
