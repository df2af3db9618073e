"""DepthMetric per-region results (moving objects): same predictions, judged on pixel subsets."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from geo3d.evaluation.depth import (DEPTH_METRIC_NAMES, DepthMetric, compute_depth_errors,
                                    evaluate_depth_map, evaluate_depth_regions)

H, W = 24, 40


def scene(seed: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Sparse-ish ground truth (0 = unknown) and a disparity prediction at the same size."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(2.0, 60.0, (h, w)).astype(np.float32)
    gt[rng.random((h, w)) < 0.3] = 0
    pred_depth = gt * rng.uniform(0.7, 1.4, (h, w)) * 0.1 + (gt == 0) * 3.0
    return gt, (1.0 / pred_depth).astype(np.float32)


def by_hand(gt: np.ndarray, disp: np.ndarray, select: np.ndarray) -> dict[str, float]:
    """eval_split='none', same size: ratio over ALL valid pixels, clamp, then the subset.
    (1 / disp in float32, as the evaluation converts the resized float32 disparity.)"""
    valid = gt > 0
    g, d = gt[valid].astype(np.float64), (1.0 / disp[valid]).astype(np.float64)
    d = np.clip(d * np.median(g) / np.median(d), 1e-3, 80.0)
    keep = select[valid]
    return compute_depth_errors(g[keep], d[keep])


def test_region_errors_equal_hand_selected_pixels() -> None:
    gt, disp = scene(0)
    dyn = np.zeros((H, W), bool)
    dyn[5:12, 10:25] = True
    ev = evaluate_depth_regions(gt, disp, {'dynamic': dyn, 'static': ~dyn}, eval_split='none')
    want_all, ratio = evaluate_depth_map(gt, disp, eval_split='none')
    assert ev.errors == want_all and ev.ratio == ratio
    for name, sel in (('dynamic', dyn), ('static', ~dyn)):
        want = by_hand(gt, disp, sel)
        for k in DEPTH_METRIC_NAMES:
            assert ev.regions[name][k] == pytest.approx(want[k], rel=1e-12), (name, k)
    assert ev.region_pixels['dynamic'] == int((dyn & (gt > 0)).sum())
    assert ev.region_pixels['dynamic'] + ev.region_pixels['static'] == ev.valid_pixels
    # the region is judged with the image's scale, not re-scaled on its own
    alone, _ = evaluate_depth_map(np.where(dyn, gt, 0), disp, eval_split='none')
    assert alone['abs_rel'] != pytest.approx(ev.regions['dynamic']['abs_rel'], rel=1e-6)
    # a region without a valid pixel has no metrics
    hole = np.zeros((H, W), bool)
    hole[gt == 0] = True
    assert evaluate_depth_regions(gt, disp, {'r': hole}, eval_split='none').regions['r'] is None


def test_regions_follow_the_crops() -> None:
    # eigen: the region is intersected with the Garg crop and the GT range
    gt, disp = scene(1, 40, 60)
    region = np.zeros((40, 60), bool)
    region[:, :30] = True
    ev = evaluate_depth_regions(gt, disp, {'left': region}, eval_split='eigen',
                                median_scaling=False)
    from geo3d.evaluation.depth import eval_mask
    valid = eval_mask(gt, 'eigen')
    g, d = gt[valid].astype(np.float64), np.clip((1.0 / disp[valid]).astype(np.float64), 1e-3, 80)
    want = compute_depth_errors(g[region[valid]], d[region[valid]])
    assert ev.regions['left']['rmse'] == pytest.approx(want['rmse'], rel=1e-12)
    # cityscapes: the mask is cut and cropped like the ground truth
    gt, disp = scene(2, 48, 64)
    region = np.zeros((48, 64), bool)
    region[30:, 10:40] = True
    ev = evaluate_depth_regions(gt, disp, {'r': region}, eval_split='cityscapes')
    g_cut, r_cut = gt[:36], region[:36]
    rows, cols = slice(12, 36), slice(6, 58)
    from geo3d.evaluation.depth import resize_disparity
    pred = 1.0 / resize_disparity(disp, 36, 64)
    g, p, r = g_cut[rows, cols], pred[rows, cols], r_cut[rows, cols]
    valid = (g > 1e-3) & (g < 80)
    gv, pv = g[valid].astype(np.float64), p[valid].astype(np.float64)
    pv = np.clip(pv * np.median(gv) / np.median(pv), 1e-3, 80)
    want = compute_depth_errors(gv[r[valid]], pv[r[valid]])
    assert ev.regions['r']['abs_rel'] == pytest.approx(want['abs_rel'], rel=1e-12)


def sample(gt: np.ndarray, disp: np.ndarray, mask: np.ndarray | None, name: str) -> dict:
    s = {'gt_depth': torch.from_numpy(gt)[None], 'pred_disp': torch.from_numpy(disp)[None],
         'img_path': name}
    if mask is not None:
        s['gt_dynamic_mask'] = torch.from_numpy(mask)[None]
    return s


def test_metric_means_over_images_with_pixels_in_the_region() -> None:
    (ga, da), (gb, db), (gc, dc) = scene(3), scene(4), scene(5)
    dyn_a = np.zeros((H, W), bool)
    dyn_a[2:9, 3:30] = True
    no_dyn = np.zeros((H, W), bool)  # image b: a mask, but nothing moves
    metric = DepthMetric(eval_split='none', regions=('dynamic',))
    metric.process({}, [sample(ga, da, dyn_a, 'a'), sample(gb, db, no_dyn, 'b'),
                        sample(gc, dc, None, 'c')])  # image c: no mask at all
    out = metric.evaluate(3)
    assert out['depth/num_images'] == 3
    assert out['depth/num_images/dynamic'] == 1 and out['depth/num_images/static'] == 2
    for k in DEPTH_METRIC_NAMES:
        assert out[f'depth/{k}/dynamic'] == pytest.approx(by_hand(ga, da, dyn_a)[k], rel=1e-12)
        want = np.mean([by_hand(ga, da, ~dyn_a)[k], by_hand(gb, db, ~no_dyn)[k]])
        assert out[f'depth/{k}/static'] == pytest.approx(want, rel=1e-12)
        overall = np.mean([evaluate_depth_map(g, d, eval_split='none')[0][k]
                           for g, d in ((ga, da), (gb, db), (gc, dc))])
        assert out[f'depth/{k}'] == pytest.approx(overall, rel=1e-12)
    n_dyn = (dyn_a & (ga > 0)).sum()
    assert out['depth/pixel_fraction/dynamic'] == pytest.approx(
        n_dyn / ((ga > 0).sum() + (gb > 0).sum()))
    assert out['depth/pixel_fraction/static'] == pytest.approx(
        1 - out['depth/pixel_fraction/dynamic'])


def test_no_region_pixels_anywhere_gives_nan_and_a_warning() -> None:
    gt, disp = scene(6)
    metric = DepthMetric(eval_split='none', regions=('dynamic',))
    metric.process({}, [sample(gt, disp, None, 'a')])
    with pytest.warns(UserWarning) as record:
        out = metric.compute_metrics(metric.results)
    assert {str(w.message).split(' (')[0].split()[-1] for w in record} == {"'dynamic'",
                                                                           "'static'"}
    assert math.isnan(out['abs_rel/dynamic']) and out['num_images/dynamic'] == 0
    assert math.isnan(out['abs_rel/static'])
    # without regions nothing region-like is reported or needed
    plain = DepthMetric(eval_split='none')
    plain.process({}, [sample(gt, disp, np.ones((H, W), bool), 'a')])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        res = plain.compute_metrics(plain.results)
    assert not any('/' in k for k in res)
    # another region name: its complement is non_<name>
    other = DepthMetric(eval_split='none', regions=('road',))
    s = sample(gt, disp, None, 'a')
    s['gt_road_mask'] = np.ones((H, W), bool)
    other.process({}, [s])
    with pytest.warns(UserWarning, match="region 'non_road'"):
        res = other.compute_metrics(other.results)
    assert res['num_images/road'] == 1 and res['num_images/non_road'] == 0
    assert res['abs_rel/road'] == pytest.approx(res['abs_rel'], rel=1e-12)


def test_bad_regions_and_masks() -> None:
    with pytest.raises(ValueError, match='regions must be names'):
        DepthMetric(regions=('a/b',))
    with pytest.raises(ValueError, match='duplicate'):
        DepthMetric(regions=('dynamic', 'dynamic'))
    with pytest.raises(ValueError, match='duplicate'):
        DepthMetric(regions=('dynamic', 'static'))  # static is dynamic's complement
    gt, disp = scene(7)
    metric = DepthMetric(eval_split='none', regions=('dynamic',))
    with pytest.raises(ValueError, match=r"img_7: region 'dynamic' mask is \(24, 39\)"):
        metric.process({}, [sample(gt, disp, np.zeros((H, W - 1), bool), 'img_7')])
    with pytest.raises(ValueError, match='single'):
        metric.process({}, [sample(gt, disp, np.zeros((2, H, W), bool), 'img_7')])
