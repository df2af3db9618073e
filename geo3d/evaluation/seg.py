"""Semantic segmentation metrics: confusion matrix, per-class IoU, mIoU."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from geo3d.registry import METRICS


def confusion_matrix(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray,
                     num_classes: int, ignore_index: int = -1) -> np.ndarray:
    """(K, K) int64 counts, rows = ground truth, columns = prediction.

    Points whose ground truth equals ``ignore_index`` (or lies outside 0..K-1) are skipped.
    Predictions outside 0..K-1 raise.
    """
    pred = torch.as_tensor(pred).long().reshape(-1)
    gt = torch.as_tensor(gt).long().reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f'pred has {pred.numel()} points, gt has {gt.numel()}')
    valid = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
    pred, gt = pred[valid], gt[valid]
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f'predictions outside 0..{num_classes - 1}')
    cm = torch.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def iou_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Per-class IoU/accuracy and their means from a (K, K) confusion matrix.

    Classes with no ground truth and no prediction (union 0) get NaN and are left out of the
    means, as in the ScanNet benchmark's evaluation over present classes.
    """
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    gt_count = cm.sum(1)
    pred_count = cm.sum(0)
    union = gt_count + pred_count - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt_count > 0, tp / gt_count, np.nan)
    total = cm.sum()
    return {
        'iou': iou, 'acc': acc,
        'mIoU': float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float('nan'),
        'mAcc': float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else float('nan'),
        'allAcc': float(tp.sum() / total) if total > 0 else float('nan'),
    }


def format_iou_table(iou: np.ndarray, acc: np.ndarray, class_names: Sequence[str]) -> str:
    """A plain-text per-class table."""
    width = max([len('class')] + [len(n) for n in class_names])
    lines = [f'{"class":<{width}}  {"IoU":>6}  {"Acc":>6}']
    for name, i, a in zip(class_names, iou, acc):
        fi = '   n/a' if np.isnan(i) else f'{100 * i:6.2f}'
        fa = '   n/a' if np.isnan(a) else f'{100 * a:6.2f}'
        lines.append(f'{name:<{width}}  {fi}  {fa}')
    return '\n'.join(lines)


@METRICS.register_module()
class SemSegMetric(BaseMetric):
    """mIoU, mAcc, allAcc over the whole split, plus a per-class IoU table in the log.

    Expects model outputs with ``pred`` (n,) and ``gt`` (n,) per sample.

    Args:
        num_classes: K; if None, taken from ``dataset_meta['classes']``.
        ignore_index: ground-truth label left out.
        class_names: names for the table; default ``dataset_meta['classes']``.
    """

    default_prefix = 'seg'

    def __init__(self, num_classes: int | None = None, ignore_index: int = -1,
                 class_names: Sequence[str] | None = None, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self._num_classes = num_classes
        self.ignore_index = ignore_index
        self._class_names = list(class_names) if class_names is not None else None

    @property
    def class_names(self) -> list[str]:
        if self._class_names is not None:
            return self._class_names
        if self.dataset_meta and 'classes' in self.dataset_meta:
            return list(self.dataset_meta['classes'])
        return [str(i) for i in range(self.num_classes)]

    @property
    def num_classes(self) -> int:
        if self._num_classes is not None:
            return self._num_classes
        if self.dataset_meta and 'classes' in self.dataset_meta:
            return len(self.dataset_meta['classes'])
        raise ValueError('SemSegMetric needs num_classes or dataset_meta["classes"]')

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if 'gt' not in s:
                raise KeyError('SemSegMetric needs ground truth ("gt") in every prediction')
            self.results.append(confusion_matrix(s['pred'], s['gt'], self.num_classes,
                                                 self.ignore_index))

    def compute_metrics(self, results: list) -> dict[str, float]:
        cm = np.sum(np.stack(results), 0)
        r = iou_from_confusion(cm)
        MMLogger.get_current_instance().info(
            '\n' + format_iou_table(r['iou'], r['acc'], self.class_names))
        return {'mIoU': r['mIoU'], 'mAcc': r['mAcc'], 'allAcc': r['allAcc']}
