"""Monocular depth metrics with the Eigen / Monodepth2 evaluation conventions.

Follows Monodepth2's ``evaluate_depth.py`` (Godard et al., ICCV 2019; ManyDepth and ProDepth
evaluate identically), which follows Eigen et al. (NIPS 2014) and Garg et al. (ECCV 2016).
For each image:

1. The prediction, a disparity (inverse depth, up to scale) at the network's resolution, is
   resized to the ground-truth resolution with ``cv2.resize(..., INTER_LINEAR)`` on float32 —
   the reference's call, so the numbers match it (bilinear with half-pixel centres and no
   anti-aliasing; it is the *disparity* that is interpolated, not depth), then
   ``depth = 1 / disp``.
2. Valid pixels, by ``eval_split``:

   * ``'eigen'``: ``min_depth < gt < max_depth`` AND the Garg crop, rows
     ``[int(0.40810811 H), int(0.99189189 H))`` and cols ``[int(0.03594771 W),
     int(0.96405229 W))`` (153:371, 44:1197 for 375x1242);
   * ``'none'`` (Monodepth2's other splits, e.g. ``eigen_benchmark``): ``gt > 0``, no crop and
     no cap on the ground truth (only the prediction is clamped);
   * ``'cityscapes'`` (ManyDepth): ``gt`` is the full Cityscapes map; its bottom 25 % is cut
     (``round(0.75 H)`` rows kept, as the input images were), the prediction is resized to
     that, both are cropped to rows ``[H'/3, H')`` and cols ``[int(0.09375 W),
     int(0.90625 W))`` (= ``[256:, 192:1856]`` of 768x2048), then ``min_depth < gt < max_depth``.

3. The prediction is multiplied by ``scale_factor`` (5.4 for Monodepth2's stereo-trained
   models), then, with ``median_scaling``, by ``ratio = median(gt) / median(pred)`` over the
   valid pixels (per image); then clamped to ``[min_depth, max_depth]``.
4. The 7 metrics of :func:`compute_depth_errors` on the valid pixels of this image.

The reported values are the **means over images** of the per-image metrics (not pooled over all
pixels), plus, with median scaling, ``ratio_median`` (median of the per-image ratios) and
``ratio_std`` (``std(ratios / ratio_median)``), as the reference prints them. Metrics are
computed in float64 (the reference uses float32; the difference is ~1e-7 relative).

Images without a single valid pixel are skipped with a warning and counted in ``num_skipped``
(the reference would turn the whole average into NaN).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from geo3d.registry import METRICS

__all__ = [
    'DepthMetric', 'compute_depth_errors', 'garg_crop_mask', 'cityscapes_crop', 'eval_mask',
    'resize_disparity', 'evaluate_depth_map', 'DEPTH_METRIC_NAMES', 'EIGEN_CROP',
    'STEREO_SCALE_FACTOR', 'EVAL_SPLITS',
]

#: Printed in this order by Monodepth2.
DEPTH_METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')
#: Garg crop as fractions (top, bottom, left, right) of the ground truth's height / width.
EIGEN_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
#: Monodepth2's stereo models were trained with a 0.1 baseline; KITTI's is 0.54 m.
STEREO_SCALE_FACTOR = 5.4
EVAL_SPLITS = ('eigen', 'none', 'cityscapes')


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def compute_depth_errors(gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor
                         ) -> dict[str, float]:
    """The 7 standard depth metrics between matching valid pixels (any equal shapes).

    ``abs_rel = mean(|g - p| / g)``, ``sq_rel = mean((g - p)^2 / g)``,
    ``rmse = sqrt(mean((g - p)^2))``, ``rmse_log = sqrt(mean((log g - log p)^2))``,
    ``a_k = mean(max(g / p, p / g) < 1.25^k)`` for k = 1, 2, 3. Computed in float64.

    Raises:
        ValueError: shapes differ, no pixels, or a non-positive / non-finite value.
    """
    g = _as_numpy(gt).astype(np.float64).ravel()
    p = _as_numpy(pred).astype(np.float64).ravel()
    if np.shape(gt) != np.shape(pred):
        raise ValueError(f'compute_depth_errors: gt {np.shape(gt)} and pred {np.shape(pred)} '
                         f'differ in shape')
    if g.size == 0:
        raise ValueError('compute_depth_errors: no valid pixels')
    for name, a in (('gt', g), ('pred', p)):
        if not np.all(np.isfinite(a)) or a.min() <= 0:
            raise ValueError(f'compute_depth_errors: {name} must be finite and > 0 '
                             f'(min {a.min()})')
    thresh = np.maximum(g / p, p / g)
    diff = g - p
    return {
        'abs_rel': float(np.mean(np.abs(diff) / g)),
        'sq_rel': float(np.mean(diff ** 2 / g)),
        'rmse': float(np.sqrt(np.mean(diff ** 2))),
        'rmse_log': float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
        'a1': float(np.mean(thresh < 1.25)),
        'a2': float(np.mean(thresh < 1.25 ** 2)),
        'a3': float(np.mean(thresh < 1.25 ** 3)),
    }


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """(H, W) bool, True inside the Garg/Eigen crop (Monodepth2's int32 truncation)."""
    top, bottom, left, right = np.array(
        [EIGEN_CROP[0] * height, EIGEN_CROP[1] * height,
         EIGEN_CROP[2] * width, EIGEN_CROP[3] * width]).astype(np.int32)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def cityscapes_crop(height: int, width: int) -> tuple[slice, slice]:
    """(rows, cols) kept of a Cityscapes map whose bottom 25 % is already cut (H' x W).

    ManyDepth crops ``[256:, 192:1856]`` of 768x2048; as fractions: rows from H'/3, cols
    ``[int(0.09375 W), int(0.90625 W))``.
    """
    return slice(int(height / 3), height), slice(int(0.09375 * width), int(0.90625 * width))


def eval_mask(gt_depth: np.ndarray, eval_split: str = 'eigen', min_depth: float = 1e-3,
              max_depth: float = 80.0) -> np.ndarray:
    """(H, W) bool valid-pixel mask of a ground-truth map for ``'eigen'`` or ``'none'``.

    ``'cityscapes'`` first crops (see :func:`evaluate_depth_map`); on the cropped map its mask
    is ``min_depth < gt < max_depth``, which ``eval_split='cityscapes'`` returns here.
    """
    if eval_split == 'eigen':
        return (gt_depth > min_depth) & (gt_depth < max_depth) & garg_crop_mask(*gt_depth.shape)
    if eval_split == 'cityscapes':
        return (gt_depth > min_depth) & (gt_depth < max_depth)
    if eval_split == 'none':
        return gt_depth > 0
    raise ValueError(f'eval_split must be one of {EVAL_SPLITS}, got {eval_split!r}')


def resize_disparity(disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) -> (H, W) float32 with ``cv2.resize`` bilinear, as Monodepth2's evaluation."""
    disp = np.ascontiguousarray(disp, dtype=np.float32)
    if disp.shape == (height, width):
        return disp
    return cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)


def _as_map(x: Any, name: str) -> np.ndarray:
    """Tensor / array with leading singleton dims -> (H, W) float32."""
    a = _as_numpy(x).astype(np.float32)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f'{name} must be a single (H, W) map (leading dims of size 1 allowed), '
                         f'got shape {a.shape}')
    return a


def evaluate_depth_map(gt_depth: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor,
                       pred_type: str = 'disp', eval_split: str = 'eigen',
                       min_depth: float = 1e-3, max_depth: float = 80.0,
                       median_scaling: bool = True, scale_factor: float = 1.0
                       ) -> tuple[dict[str, float], float | None]:
    """Errors of one image with the conventions of the module docstring.

    Args:
        gt_depth: (H, W) ground-truth depth in metres, 0 (or <= min_depth) where unknown.
        pred: (h, w) prediction at any resolution (leading singleton dims allowed).
        pred_type: ``'disp'`` — a disparity, i.e. proportional to 1 / depth (e.g. the scaled
            disparity of ``disp_to_depth``); ``'depth'`` — a depth map (converted to 1 / depth
            for the resize, so both give the same numbers).
        eval_split: ``'eigen'``, ``'none'`` or ``'cityscapes'``.
        min_depth, max_depth: ground-truth range (eigen, cityscapes) and prediction clamp.
        median_scaling: scale each prediction by median(gt) / median(pred).
        scale_factor: fixed factor applied before median scaling (5.4 for stereo models).

    Returns:
        (the 7 metrics, the median-scaling ratio or None).

    Raises:
        ValueError: bad arguments, or no valid pixel in this image.
    """
    if eval_split not in EVAL_SPLITS:
        raise ValueError(f'eval_split must be one of {EVAL_SPLITS}, got {eval_split!r}')
    if pred_type not in ('disp', 'depth'):
        raise ValueError(f"pred_type must be 'disp' or 'depth', got {pred_type!r}")
    if not 0 < min_depth < max_depth:
        raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
    gt = _as_map(gt_depth, 'gt_depth')
    p = _as_map(pred, 'pred')
    if not np.all(p > 0):
        raise ValueError(f'pred ({pred_type}) must be > 0 everywhere (min {p.min()})')
    disp = p if pred_type == 'disp' else 1.0 / p
    if eval_split == 'cityscapes':
        gt = gt[:int(round(gt.shape[0] * 0.75))]
    pred_depth = 1.0 / resize_disparity(disp, *gt.shape)
    if eval_split == 'cityscapes':
        rows, cols = cityscapes_crop(*gt.shape)
        gt, pred_depth = gt[rows, cols], pred_depth[rows, cols]
    mask = eval_mask(gt, eval_split, min_depth, max_depth)
    if not mask.any():
        raise ValueError('no valid ground-truth pixel in this image '
                         f'(eval_split={eval_split!r}, range ({min_depth}, {max_depth}))')
    g = gt[mask].astype(np.float64)
    d = pred_depth[mask].astype(np.float64) * scale_factor
    ratio = None
    if median_scaling:
        ratio = float(np.median(g) / np.median(d))
        d = d * ratio
    d = np.clip(d, min_depth, max_depth)
    return compute_depth_errors(g, d), ratio


def _get(sample: Any, key: str) -> Any:
    if isinstance(sample, Mapping):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class DepthMetric(BaseMetric):
    """KITTI-style depth metrics (abs_rel ... a3), Eigen conventions; see the module docstring.

    Each prediction (a dict or data element from the model's ``predict``) carries ``gt_depth``
    (H, W) metres and exactly one of

    * ``pred_disp``: a disparity proportional to 1 / depth — by default the *scaled* disparity
      (first return of ``disp_to_depth``), as Monodepth2 evaluates; with
      ``sigmoid_depth_range=(min, max)`` the raw sigmoid output of the decoder, converted with
      ``geo3d.structures.camera.disp_to_depth(sigma, min, max)`` first (Monodepth2: 0.1, 100);
    * ``pred_depth``: a depth map (resized as 1 / depth, so results equal ``pred_disp = 1/depth``).

    Tensors may keep leading singleton dims ((1, h, w) or (1, 1, h, w)). An optional
    ``img_path`` names the image in warnings.

    Args:
        eval_split: ``'eigen'`` (Garg crop + GT range), ``'none'`` (gt > 0 only) or
            ``'cityscapes'`` (ManyDepth's crop).
        min_depth, max_depth: GT range and prediction clamp (1e-3, 80).
        median_scaling: per-image median scaling (monocular models).
        scale_factor: fixed scale applied first (``STEREO_SCALE_FACTOR`` = 5.4 for Monodepth2's
            stereo models, used with ``median_scaling=False``).
        sigmoid_depth_range: see ``pred_disp`` above; None means ``pred_disp`` is already a
            (scaled) disparity.
        collect_device, prefix: as mmengine's ``BaseMetric`` (default prefix ``depth``).

    Results: the 7 metrics (means over images), ``num_images``, ``num_skipped`` (images without
    a valid GT pixel, skipped with a warning) and, with median scaling, ``ratio_median`` and
    ``ratio_std``.
    """

    default_prefix = 'depth'

    def __init__(self, eval_split: str = 'eigen', min_depth: float = 1e-3,
                 max_depth: float = 80.0, median_scaling: bool = True, scale_factor: float = 1.0,
                 sigmoid_depth_range: Sequence[float] | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if eval_split not in EVAL_SPLITS:
            raise ValueError(f'DepthMetric: eval_split must be one of {EVAL_SPLITS}, '
                             f'got {eval_split!r}')
        if not 0 < min_depth < max_depth:
            raise ValueError(f'DepthMetric: need 0 < min_depth < max_depth, got {min_depth}, '
                             f'{max_depth}')
        if scale_factor <= 0:
            raise ValueError(f'DepthMetric: scale_factor must be > 0, got {scale_factor}')
        if sigmoid_depth_range is not None:
            lo, hi = (float(v) for v in sigmoid_depth_range)
            if not 0 < lo < hi:
                raise ValueError(f'DepthMetric: sigmoid_depth_range must be (min, max) with '
                                 f'0 < min < max, got {tuple(sigmoid_depth_range)}')
            sigmoid_depth_range = (lo, hi)
        self.eval_split = eval_split
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.median_scaling = median_scaling
        self.scale_factor = float(scale_factor)
        self.sigmoid_depth_range = sigmoid_depth_range

    def _prediction(self, sample: Any, where: str) -> tuple[Any, str]:
        disp, depth = _get(sample, 'pred_disp'), _get(sample, 'pred_depth')
        if (disp is None) == (depth is None):
            raise KeyError(f'DepthMetric: {where} needs exactly one of "pred_disp" or '
                           f'"pred_depth"')
        if depth is not None:
            return depth, 'depth'
        if self.sigmoid_depth_range is not None:
            from geo3d.structures.camera import disp_to_depth
            disp = disp_to_depth(torch.as_tensor(disp, dtype=torch.float32),
                                 *self.sigmoid_depth_range)[0]
        return disp, 'disp'

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for i, sample in enumerate(data_samples):
            name = _get(sample, 'img_path') or f'sample {len(self.results)}'
            gt = _get(sample, 'gt_depth')
            if gt is None:
                raise KeyError(f'DepthMetric: {name} has no "gt_depth" (the model\'s predict '
                               f'must pass the ground truth through)')
            pred, pred_type = self._prediction(sample, str(name))
            try:
                errors, ratio = evaluate_depth_map(
                    gt, pred, pred_type, self.eval_split, self.min_depth, self.max_depth,
                    self.median_scaling, self.scale_factor)
            except ValueError as err:
                if 'no valid ground-truth pixel' not in str(err):
                    raise ValueError(f'DepthMetric: {name}: {err}') from err
                warnings.warn(f'DepthMetric: {name} skipped: {err}', stacklevel=2)
                self.results.append({'skipped': str(name)})
                continue
            self.results.append({'errors': errors, 'ratio': ratio})

    def compute_metrics(self, results: list) -> dict[str, float]:
        done = [r for r in results if 'errors' in r]
        skipped = len(results) - len(done)
        if not done:
            raise ValueError(f'DepthMetric: none of the {len(results)} images had a valid '
                             f'ground-truth pixel')
        out = {k: float(np.mean([r['errors'][k] for r in done])) for k in DEPTH_METRIC_NAMES}
        if self.median_scaling:
            ratios = np.array([r['ratio'] for r in done], dtype=np.float64)
            med = float(np.median(ratios))
            out['ratio_median'] = med
            out['ratio_std'] = float(np.std(ratios / med))
        out['num_images'] = len(done)
        out['num_skipped'] = skipped
        header = ' | '.join(f'{k:>8}' for k in DEPTH_METRIC_NAMES)
        values = ' | '.join(f'{out[k]:8.3f}' for k in DEPTH_METRIC_NAMES)
        line = f'\n{header}\n{values}\n({len(done)} images, {skipped} skipped'
        if self.median_scaling:
            line += f'; scaling ratios med {out["ratio_median"]:.3f} std {out["ratio_std"]:.3f}'
        MMLogger.get_current_instance().info(line + ')')
        return out
