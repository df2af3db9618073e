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

**Regions** (geo3d's addition, e.g. moving objects of the demo drives): with
``DepthMetric(regions=('dynamic',))`` each sample may carry a boolean mask ``gt_dynamic_mask``
(H, W) at the ground truth's resolution. Besides the usual numbers, every metric is also
computed on the valid pixels inside the region (``abs_rel/dynamic``) and outside it
(``abs_rel/static``; other regions ``r`` get ``abs_rel/non_r``). The prediction is the *same*:
the median-scaling ratio is computed over all valid pixels of the image, only the pixels judged
differ. A region's numbers are means over the images that have at least one valid pixel in it
(``num_images/<name>``); ``pixel_fraction/<name>`` is its share of the valid pixels of the
images that carry a mask. Images without a mask count for neither the region nor its complement.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from geo3d.registry import METRICS

__all__ = [
    'DepthMetric', 'compute_depth_errors', 'garg_crop_mask', 'cityscapes_crop', 'eval_mask',
    'resize_disparity', 'evaluate_depth_map', 'evaluate_depth_regions', 'DepthEvaluation',
    'region_names', 'DEPTH_METRIC_NAMES', 'EIGEN_CROP', 'STEREO_SCALE_FACTOR', 'EVAL_SPLITS',
]

#: Printed in this order by Monodepth2.
DEPTH_METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')
#: Garg crop as fractions (top, bottom, left, right) of the ground truth's height / width.
EIGEN_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
#: Monodepth2's stereo models were trained with a 0.1 baseline; KITTI's is 0.54 m.
STEREO_SCALE_FACTOR = 5.4
EVAL_SPLITS = ('eigen', 'none', 'cityscapes')
#: name of the complement of a region (default ``non_<region>``)
REGION_COMPLEMENTS = {'dynamic': 'static'}


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


def _check_eval_args(pred_type: str, eval_split: str, min_depth: float,
                     max_depth: float) -> None:
    if eval_split not in EVAL_SPLITS:
        raise ValueError(f'eval_split must be one of {EVAL_SPLITS}, got {eval_split!r}')
    if pred_type not in ('disp', 'depth'):
        raise ValueError(f"pred_type must be 'disp' or 'depth', got {pred_type!r}")
    if not 0 < min_depth < max_depth:
        raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')


class _Prepared(NamedTuple):
    gt: np.ndarray  # (n,) float64 valid ground truth
    pred: np.ndarray  # (n,) float64 scaled, clamped prediction at the same pixels
    ratio: float | None
    mask: np.ndarray  # (H', W') bool valid pixels of the evaluated (cut / cropped) frame
    crop: Callable[[np.ndarray], np.ndarray]  # (H, W) map at the GT size -> (H', W')


def _prepare(gt_depth: Any, pred: Any, pred_type: str, eval_split: str, min_depth: float,
             max_depth: float, median_scaling: bool, scale_factor: float) -> _Prepared:
    """Steps 1-3 of the module docstring for one image."""
    _check_eval_args(pred_type, eval_split, min_depth, max_depth)
    gt = _as_map(gt_depth, 'gt_depth')
    p = _as_map(pred, 'pred')
    if not np.all(p > 0):
        raise ValueError(f'pred ({pred_type}) must be > 0 everywhere (min {p.min()})')
    disp = p if pred_type == 'disp' else 1.0 / p

    def crop(m: np.ndarray) -> np.ndarray:
        if eval_split != 'cityscapes':
            return m
        m = m[:int(round(m.shape[0] * 0.75))]
        rows, cols = cityscapes_crop(*m.shape)
        return m[rows, cols]

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
    return _Prepared(g, d, ratio, mask, crop)


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
    prep = _prepare(gt_depth, pred, pred_type, eval_split, min_depth, max_depth, median_scaling,
                    scale_factor)
    return compute_depth_errors(prep.gt, prep.pred), prep.ratio


class DepthEvaluation(NamedTuple):
    """Result of :func:`evaluate_depth_regions` for one image.

    Attributes:
        errors: the 7 metrics over all valid pixels.
        ratio: median-scaling ratio (over all valid pixels) or None.
        regions: region name -> the 7 metrics over its valid pixels, None if it has none.
        region_pixels: region name -> number of valid pixels in it.
        valid_pixels: number of valid pixels of the image.
    """

    errors: dict[str, float]
    ratio: float | None
    regions: dict[str, dict[str, float] | None]
    region_pixels: dict[str, int]
    valid_pixels: int


def _as_mask(x: Any, name: str) -> np.ndarray:
    """Tensor / array with leading singleton dims -> (H, W) bool."""
    a = _as_numpy(x)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f'{name} must be a single (H, W) mask (leading dims of size 1 allowed), '
                         f'got shape {a.shape}')
    return a.astype(bool)


def evaluate_depth_regions(gt_depth: np.ndarray | torch.Tensor,
                           pred: np.ndarray | torch.Tensor,
                           regions: Mapping[str, np.ndarray | torch.Tensor],
                           pred_type: str = 'disp', eval_split: str = 'eigen',
                           min_depth: float = 1e-3, max_depth: float = 80.0,
                           median_scaling: bool = True, scale_factor: float = 1.0
                           ) -> DepthEvaluation:
    """:func:`evaluate_depth_map` plus the metrics restricted to pixel regions of the image.

    The prediction is scaled once, over all valid pixels (the median-scaling ratio does not
    depend on the regions); each region's metrics are :func:`compute_depth_errors` on the
    valid pixels inside it.

    Args:
        gt_depth, pred, pred_type, eval_split, min_depth, max_depth, median_scaling,
            scale_factor: as :func:`evaluate_depth_map`.
        regions: name -> (H, W) bool mask at the ground truth's size (cut / cropped like it
            for ``'cityscapes'``); e.g. ``{'dynamic': m, 'static': ~m}``.

    Returns:
        :class:`DepthEvaluation`.

    Raises:
        ValueError: bad arguments, a mask of another size, or no valid pixel in this image.
    """
    gt_shape = _as_map(gt_depth, 'gt_depth').shape
    masks = {}
    for name, m in regions.items():
        m = _as_mask(m, f'region {name!r}')
        if m.shape != gt_shape:
            raise ValueError(f'region {name!r} mask is {m.shape} but gt_depth is {gt_shape}')
        masks[name] = m
    prep = _prepare(gt_depth, pred, pred_type, eval_split, min_depth, max_depth, median_scaling,
                    scale_factor)
    out: dict[str, dict[str, float] | None] = {}
    pixels: dict[str, int] = {}
    for name, m in masks.items():
        inside = prep.crop(m)[prep.mask]  # (n,) over the valid pixels
        pixels[name] = int(inside.sum())
        out[name] = compute_depth_errors(prep.gt[inside], prep.pred[inside]) \
            if pixels[name] else None
    return DepthEvaluation(compute_depth_errors(prep.gt, prep.pred), prep.ratio, out, pixels,
                           int(prep.mask.sum()))


def region_names(region: str) -> tuple[str, str]:
    """(region, complement) names used in the results: ``dynamic`` -> ``static``, else
    ``r`` -> ``non_r``."""
    return region, REGION_COMPLEMENTS.get(region, f'non_{region}')


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
        regions: names ``r`` of pixel regions to report separately (e.g. ``('dynamic',)``):
            each sample may carry ``gt_<r>_mask`` (H, W) bool at the ground truth's size
            (``KITTIRawDataset`` gives ``gt_dynamic_mask`` for demo drives with moving objects).
        collect_device, prefix: as mmengine's ``BaseMetric`` (default prefix ``depth``).

    Results: the 7 metrics (means over images), ``num_images``, ``num_skipped`` (images without
    a valid GT pixel, skipped with a warning) and, with median scaling, ``ratio_median`` and
    ``ratio_std``. With ``regions``, for each region and its complement (``dynamic`` /
    ``static``, otherwise ``r`` / ``non_r``): ``<metric>/<name>`` (mean over the images that
    have valid pixels there; NaN, with a warning, if none has), ``num_images/<name>`` and
    ``pixel_fraction/<name>`` (see the module docstring).
    """

    default_prefix = 'depth'

    def __init__(self, eval_split: str = 'eigen', min_depth: float = 1e-3,
                 max_depth: float = 80.0, median_scaling: bool = True, scale_factor: float = 1.0,
                 sigmoid_depth_range: Sequence[float] | None = None,
                 regions: Sequence[str] = (),
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
        if isinstance(regions, str):
            regions = (regions,)
        regions = tuple(regions)
        for r in regions:
            if not isinstance(r, str) or not r.isidentifier():
                raise ValueError(f'DepthMetric: regions must be names like "dynamic" (the sample '
                                 f'key is gt_<name>_mask), got {r!r}')
        names = [n for r in regions for n in region_names(r)]
        if len(set(names)) != len(names):
            raise ValueError(f'DepthMetric: regions {regions} give duplicate result names '
                             f'{names}')
        self.regions = regions
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
            masks = {}
            for r in self.regions:
                m = _get(sample, f'gt_{r}_mask')
                if m is not None:
                    inside = _as_mask(m, f'gt_{r}_mask')
                    r_in, r_out = region_names(r)
                    masks[r_in], masks[r_out] = inside, ~inside
            try:
                ev = evaluate_depth_regions(
                    gt, pred, masks, pred_type, self.eval_split, self.min_depth,
                    self.max_depth, self.median_scaling, self.scale_factor)
            except ValueError as err:
                if 'no valid ground-truth pixel' not in str(err):
                    raise ValueError(f'DepthMetric: {name}: {err}') from err
                warnings.warn(f'DepthMetric: {name} skipped: {err}', stacklevel=2)
                self.results.append({'skipped': str(name)})
                continue
            self.results.append({'errors': ev.errors, 'ratio': ev.ratio,
                                 'regions': ev.regions, 'region_pixels': ev.region_pixels,
                                 'valid_pixels': ev.valid_pixels})

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
        line += ')'
        for r in self.regions:
            for region in region_names(r):
                line += self._region_results(done, region, out)
        MMLogger.get_current_instance().info(line)
        return out

    def _region_results(self, done: list[dict], region: str, out: dict[str, float]) -> str:
        """Add ``<metric>/<region>``, ``num_images/<region>``, ``pixel_fraction/<region>``
        to ``out``; returns the log line."""
        with_mask = [r for r in done if region in r.get('regions', {})]
        have = [r for r in with_mask if r['regions'][region] is not None]
        for k in DEPTH_METRIC_NAMES:
            out[f'{k}/{region}'] = float(np.mean([r['regions'][region][k] for r in have])) \
                if have else float('nan')
        out[f'num_images/{region}'] = len(have)
        valid = sum(r['valid_pixels'] for r in with_mask)
        out[f'pixel_fraction/{region}'] = \
            sum(r['region_pixels'][region] for r in with_mask) / valid if valid else float('nan')
        if not have:
            warnings.warn(f'DepthMetric: no image has a valid pixel in region {region!r} '
                          f'({len(with_mask)} of {len(done)} images carry its mask)',
                          stacklevel=3)
        values = ' | '.join(f'{out[f"{k}/{region}"]:8.3f}' for k in DEPTH_METRIC_NAMES)
        return (f'\n{values}   <- {region}: {len(have)} images, '
                f'{out[f"pixel_fraction/{region}"]:.1%} of the valid pixels')
