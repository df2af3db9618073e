"""Image quality of rendered views against the real (held-out) frames: PSNR, SSIM, depth error.

Per frame, over the pixels where the real frame has data (``mask='depth'``: the frame's depth
was measured; ``'none'``: every pixel):

* ``PSNR = 10 log10(data_range^2 / MSE)``, the MSE averaged over those pixels and the colour
  channels (MSE is floored at 1e-10, so identical images give 100 dB for ``data_range=1``);
* ``SSIM``: the standard SSIM map (Wang et al., TIP 2004: Gaussian window ``ssim_window`` x
  ``ssim_window``, sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``; ``kornia.metrics.ssim``)
  averaged over those pixels and the channels;
* ``depth_l1``: mean ``|rendered - measured|`` depth (metres) where the depth was measured and
  the render's alpha exceeds ``alpha_threshold`` (frames without such pixels are left out of
  its mean); ``alpha``: the mean rendered opacity.

Reported (``compute_metrics``): ``psnr``, ``ssim``, ``depth_l1``, ``alpha`` as means over all
frames, ``psnr_scene_mean`` (mean of the per-scene means), ``num_frames``, and with
``per_scene`` ``psnr/<scene>`` (that scene's mean over its frames). With mmengine's prefix
(default ``render``) the logged keys are ``render/psnr`` etc.

A prediction (what :meth:`Gaussian2Scene.predict` returns per scene) is a dict with
``pred_rgb`` / ``gt_rgb`` (F, 3, H, W) in [0, 1], ``gt_depth`` (F, 1, H, W) (0 = none;
needed for ``mask='depth'``), optional ``pred_depth`` and ``alpha`` (F, 1, H, W), ``name``.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from geo3d.registry import METRICS

__all__ = ['RenderMetric', 'psnr', 'masked_ssim', 'MIN_MSE']

MIN_MSE = 1e-10


def _check_images(pred: Tensor, target: Tensor, mask: Tensor | None) -> None:
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f'pred and target must be (F, C, H, W) of one shape, got '
                         f'{tuple(pred.shape)} and {tuple(target.shape)}')
    if mask is not None and (mask.ndim != 4 or mask.shape[0] != pred.shape[0]
                             or mask.shape[1] != 1 or mask.shape[2:] != pred.shape[2:]):
        raise ValueError(f'mask must be (F, 1, H, W) matching {tuple(pred.shape)}, got '
                         f'{tuple(mask.shape)}')


def psnr(pred: Tensor, target: Tensor, mask: Tensor | None = None,
         data_range: float = 1.0) -> Tensor:
    """(F,) PSNR in dB of every frame, over the masked pixels and all channels.

    Args:
        pred, target: (F, C, H, W) images.
        mask: (F, 1, H, W) bool; None = all pixels. A frame without a masked pixel gets NaN.
        data_range: the images' value range (1 for [0, 1]).
    """
    _check_images(pred, target, mask)
    err = (pred - target).pow(2)
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.to(err.dtype)
        count = m.flatten(1).sum(1) * pred.shape[1]
        mse = (err * m).flatten(1).sum(1) / count
        mse = torch.where(count > 0, mse, torch.full_like(mse, float('nan')))
    return 10.0 * torch.log10(data_range ** 2 / mse.clamp(min=MIN_MSE))


def masked_ssim(pred: Tensor, target: Tensor, mask: Tensor | None = None,
                window_size: int = 11, data_range: float = 1.0) -> Tensor:
    """(F,) mean of the SSIM map (``kornia.metrics.ssim``) over the masked pixels and channels.

    Args:
        pred, target: (F, C, H, W) images; mask: (F, 1, H, W) bool or None (all pixels).
        window_size: odd Gaussian window size (sigma 1.5).
    """
    from kornia.metrics import ssim as kornia_ssim

    _check_images(pred, target, mask)
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f'window_size must be odd and positive, got {window_size}')
    smap = kornia_ssim(pred, target, window_size, max_val=data_range)
    if mask is None:
        return smap.flatten(1).mean(1)
    m = mask.to(smap.dtype).expand_as(smap)
    count = m.flatten(1).sum(1)
    val = (smap * m).flatten(1).sum(1) / count.clamp(min=1)
    return torch.where(count > 0, val, torch.full_like(val, float('nan')))


def _get(sample: Any, key: str) -> Any:
    if isinstance(sample, Mapping):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class RenderMetric(BaseMetric):
    """PSNR / SSIM / depth error of rendered vs real frames (see the module docstring).

    Args:
        mask: ``'depth'`` (pixels with a measured depth) or ``'none'`` (all pixels).
        ssim_window: Gaussian window of SSIM (odd); 0 skips SSIM.
        data_range: value range of the images.
        alpha_threshold: rendered alpha above which ``depth_l1`` counts a pixel.
        per_scene: also report ``psnr/<scene>`` for every scene.
        collect_device, prefix: as mmengine's ``BaseMetric`` (default prefix ``render``).
    """

    default_prefix = 'render'

    def __init__(self, mask: Literal['depth', 'none'] = 'depth', ssim_window: int = 11,
                 data_range: float = 1.0, alpha_threshold: float = 0.5,
                 per_scene: bool = True, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if mask not in ('depth', 'none'):
            raise ValueError(f"mask must be 'depth' or 'none', got {mask!r}")
        if ssim_window < 0 or (ssim_window and ssim_window % 2 == 0):
            raise ValueError(f'ssim_window must be 0 (off) or odd, got {ssim_window}')
        if not data_range > 0:
            raise ValueError(f'data_range must be positive, got {data_range}')
        self.mask = mask
        self.ssim_window = int(ssim_window)
        self.data_range = float(data_range)
        self.alpha_threshold = float(alpha_threshold)
        self.per_scene = per_scene

    def _tensor(self, sample: Any, key: str, where: str, required: bool = True
                ) -> Tensor | None:
        v = _get(sample, key)
        if v is None:
            if required:
                raise KeyError(f'RenderMetric: {where} has no {key!r} (expected the dicts of '
                               'Gaussian2Scene.predict)')
            return None
        v = torch.as_tensor(v).detach().cpu().double()
        if v.ndim == 3:  # a single frame
            v = v[None]
        return v

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for i, sample in enumerate(data_samples):
            name = str(_get(sample, 'name') or f'sample{len(self.results)}_{i}')
            where = f'prediction {name!r}'
            pred = self._tensor(sample, 'pred_rgb', where)
            gt = self._tensor(sample, 'gt_rgb', where)
            gt_depth = self._tensor(sample, 'gt_depth', where, required=self.mask == 'depth')
            mask = (gt_depth > 0) if self.mask == 'depth' else None
            p = psnr(pred, gt, mask, self.data_range)
            s = (masked_ssim(pred, gt, mask, self.ssim_window, self.data_range)
                 if self.ssim_window else torch.full_like(p, float('nan')))
            pred_depth = self._tensor(sample, 'pred_depth', where, required=False)
            alpha = self._tensor(sample, 'alpha', where, required=False)
            frames = []
            for f in range(pred.shape[0]):
                row = {'psnr': float(p[f]), 'ssim': float(s[f])}
                if alpha is not None:
                    row['alpha'] = float(alpha[f].mean())
                if pred_depth is not None and gt_depth is not None:
                    valid = gt_depth[f] > 0
                    if alpha is not None:
                        valid = valid & (alpha[f] > self.alpha_threshold)
                    if bool(valid.any()):
                        row['depth_l1'] = float((pred_depth[f] - gt_depth[f]).abs()[valid].mean())
                frames.append(row)
            # one result per dataset sample (scene): mmengine keeps the first len(dataset)
            self.results.append({'name': name, 'frames': frames})

    def compute_metrics(self, results: list) -> dict[str, float]:
        rows = [dict(f, name=r['name']) for r in results for f in r['frames']
                if math.isfinite(f['psnr'])]
        out: dict[str, float] = {'num_frames': float(len(rows))}
        if not rows:
            return out

        def mean(key: str) -> float:
            vals = [r[key] for r in rows if key in r and math.isfinite(r[key])]
            return float(np.mean(vals)) if vals else float('nan')

        for key in ('psnr', 'ssim', 'depth_l1', 'alpha'):
            value = mean(key)
            if math.isfinite(value):  # ssim off, or no depth / alpha in the predictions
                out[key] = value
        per: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            per[r['name']].append(r['psnr'])
        scene_means = {k: float(np.mean(v)) for k, v in per.items()}
        out['psnr_scene_mean'] = float(np.mean(list(scene_means.values())))
        if self.per_scene:
            for k in sorted(scene_means):
                out[f'psnr/{k}'] = scene_means[k]
        return out
