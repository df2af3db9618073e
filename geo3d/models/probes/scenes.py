"""Scene iteration for the offline probes (kNN, cached linear): datasets and extractor from a
linear-probe config."""
from __future__ import annotations

import copy
from typing import Any, Iterator

import torch
from mmengine.config import Config

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
