"""Scene iteration for the offline probes (kNN, cached linear): datasets and extractor from a
linear-probe config."""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

import torch
from mmengine.config import Config

from geo3d.evaluation.seg import confusion_matrix, format_iou_table, iou_from_confusion
from geo3d.registry import DATASETS
from geo3d.structures import PointBatch

from .linear_probe import FrozenFeatureExtractor


def build_probe_split(cfg: Config, which: str) -> Any:
    """The ``train`` or ``val`` dataset of a probe config with the config's deterministic val
    pipeline, no repetition (``loop=1``) and ``test_mode`` on."""
    if which not in ('train', 'val'):
        raise ValueError(f"which must be 'train' or 'val', got {which!r}")
    ds = copy.deepcopy(cfg[f'{which}_dataloader'].dataset)
    ds.pipeline = copy.deepcopy(cfg.val_dataloader.dataset.pipeline)
    ds.loop = 1
    ds.test_mode = True
    return DATASETS.build(ds)


def iter_scenes(dataset: Any, device: torch.device | str = 'cpu',
                limit: int | None = None) -> Iterator[PointBatch]:
    """One collated single-scene :class:`PointBatch` per dataset item (at most ``limit``)."""
    from geo3d.datasets.collate import point_collate
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(n):
        yield point_collate([dataset[i]])['inputs'].to(device)


def build_extractor(cfg: Config, checkpoint: str | None) -> FrozenFeatureExtractor:
    """Frozen backbone + sampler of a probe (or any ``model.backbone``) config."""
    return FrozenFeatureExtractor(copy.deepcopy(cfg.model.backbone),
                                  copy.deepcopy(cfg.model.get('sampler')), checkpoint)


def evaluate_scenes(predict: Callable[[PointBatch], list[dict[str, Any]]],
                    batches: Iterable[PointBatch], num_classes: int, ignore_index: int = -1,
                    class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """mIoU / mAcc / allAcc, per-class ``iou``/``acc``, the ``confusion`` matrix and a printable
    per-class ``table`` of ``predict`` (batch -> per-sample ``pred``/``gt`` dicts) over all
    scenes of ``batches``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for batch in batches:
        for d in predict(batch):
            cm += confusion_matrix(d['pred'], d['gt'], num_classes, ignore_index)
    r = iou_from_confusion(cm)
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    r['confusion'] = cm
    r['table'] = format_iou_table(r['iou'], r['acc'], names)
    return r
