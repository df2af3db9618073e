"""Dynamic dataset curation during self-supervised training (a hook driving ``CurationSampler``).

Kerdreux et al., "Efficient Self-Supervised Learning for Earth Observation via Dynamic Dataset
Curation" (CVPRW 2025, arXiv 2504.06962): after ``warmup_epochs`` epochs on the whole dataset,
and then every ``interval`` epochs, the *current* model embeds a random subset of the dataset
(``candidate_ratio``), the embeddings are clustered by hierarchical k-means and a fraction
``keep_ratio`` of the dataset is re-sampled, balanced across the clusters (Vo et al., 2024; see
:mod:`geo3d.engine.samplers.cluster_selection`); training continues on that subset. Candidates
are drawn from the whole dataset each time, so a sample pruned once can come back.

Distributed: every rank embeds its share of the candidates, the embeddings are gathered, rank 0
selects and broadcasts the new active set, so all ranks train on the same subset.

Checkpoints hold the active set (``checkpoint['curation_sampler']``); ``--resume`` restores it
before training continues. ``load_from`` (a new run initialised from a checkpoint, e.g. the next
phase of a continual run) starts from the whole dataset.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object, broadcast_object_list, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from geo3d.registry import DATASETS, FUNCTIONS, HOOKS

from ..samplers.cluster_selection import balanced_cluster_sample, near_duplicate_mask
from ..samplers.curation import CurationSampler

__all__ = ['DatasetCurationHook', 'model_tensor_features', 'pool_features', 'find_sampler']

CHECKPOINT_KEY = 'curation_sampler'
FeatureFn = Callable[[torch.nn.Module, Any], Tensor]


def pool_features(out: Any) -> Tensor:
    """One embedding per sample from a model's ``mode='tensor'`` output.

    A tensor (B, D) is returned as is, (B, C, ...) is averaged over the trailing dimensions; for
    a tuple/list (e.g. multi-level backbone outputs) the last tensor is used.

    Raises:
        TypeError: the output is neither a tensor nor a sequence holding one.
    """
    if isinstance(out, (tuple, list)):
        tensors = [o for o in out if isinstance(o, Tensor)]
        if not tensors:
            raise TypeError('the model returned a sequence without tensors; pass feature_fn= '
                            'to DatasetCurationHook')
        out = tensors[-1]
    if not isinstance(out, Tensor):
        raise TypeError(f"the model's mode='tensor' output is a {type(out).__name__}; pass "
                        'feature_fn= to DatasetCurationHook to get (B, D) embeddings')
    if out.ndim < 2:
        raise TypeError(f"the model's mode='tensor' output has shape {tuple(out.shape)}; "
                        'expected (B, D) or (B, C, ...) per-sample features')
    return out.flatten(2).mean(2) if out.ndim > 2 else out


def model_tensor_features(model: torch.nn.Module, data_batch: Any) -> Tensor:
    """Default feature function: the data preprocessor, then ``model(..., mode='tensor')``.

    Returns:
        (B, D) embeddings (see :func:`pool_features`).
    """
    data = model.data_preprocessor(data_batch, False)
    if isinstance(data, dict):
        out = model(**data, mode='tensor')
    elif isinstance(data, (list, tuple)):
        out = model(*data, mode='tensor')
    else:
        raise TypeError(f'the data preprocessor returned a {type(data).__name__}; expected a '
                        'dict or a sequence')
    return pool_features(out)


def _resolve_feature_fn(fn: str | FeatureFn | None) -> FeatureFn:
    if fn is None:
        return model_tensor_features
    if callable(fn):
        return fn
    if isinstance(fn, str):
        found = FUNCTIONS.get(fn)
        if found is None and '.' in fn:
            module, _, name = fn.rpartition('.')
            try:
                found = getattr(importlib.import_module(module), name, None)
            except ImportError as e:
                raise ValueError(f'feature_fn {fn!r}: cannot import {module!r}: {e}') from e
        if found is None:
            raise ValueError(f'feature_fn {fn!r} is neither in the FUNCTIONS registry nor an '
                             'importable "module.function"')
        return found
    raise TypeError(f'feature_fn must be a callable or a name, got {type(fn).__name__}')


def find_sampler(dataloader: DataLoader) -> CurationSampler | None:
    """The ``CurationSampler`` of a dataloader (directly or inside its batch sampler)."""
    for s in (getattr(dataloader, 'sampler', None),
              getattr(getattr(dataloader, 'batch_sampler', None), 'sampler', None)):
        if isinstance(s, CurationSampler):
            return s
    return None


@HOOKS.register_module()
class DatasetCurationHook(Hook):
    """Every ``interval`` epochs, re-select the training subset from the model's embeddings.

    Needs ``train_dataloader.sampler = dict(type='CurationSampler')`` and an epoch-based loop.

    Args:
        keep_ratio: fraction of the dataset kept, rho in (0, 1].
        num_clusters: k-means clusters per level, finest first (an int = one level).
        interval: curate every ``interval`` epochs (T_s).
        warmup_epochs: first curation after this many epochs on the whole dataset (T_w >= 1).
        candidate_ratio: fraction of the dataset embedded each time (random, seeded); the new
            subset is chosen among them.
        eta: fraction of each cluster's share taken closest to its centroid (the rest random).
        dedup_threshold: if set, candidates whose cosine similarity to an earlier candidate
            exceeds it are dropped before clustering (near-duplicates).
        normalize: cluster L2-normalised embeddings.
        feature_fn: ``fn(model, data_batch) -> (B, D)`` embeddings, or its name in FUNCTIONS /
            a ``"module.function"`` path; default :func:`model_tensor_features`.
        dataset: dataset config or object to embed instead of the training set (e.g. the same
            data without random augmentation); same length and order as the training set.
        batch_size: batch size of the feature pass (default: the training loader's).
        num_workers: workers of the feature pass.
        seed: seed of the candidate draw, k-means and sampling (plus the epoch); default the
            sampler's seed.
        skip_last_epoch: do not curate after the final epoch (nothing trains on it).
    """

    priority = 'NORMAL'   # before CheckpointHook (VERY_LOW), so checkpoints hold the new set

    def __init__(self, keep_ratio: float = 0.5, num_clusters: int | Sequence[int] = 10,
                 interval: int = 1, warmup_epochs: int = 1, candidate_ratio: float = 1.0,
                 eta: float = 0.0, dedup_threshold: float | None = None, normalize: bool = True,
                 feature_fn: str | FeatureFn | None = None, dataset: dict | Dataset | None = None,
                 batch_size: int | None = None, num_workers: int = 0, seed: int | None = None,
                 skip_last_epoch: bool = True) -> None:
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f'DatasetCurationHook: keep_ratio must be in (0, 1], got '
                             f'{keep_ratio}')
        if not 0.0 < candidate_ratio <= 1.0:
            raise ValueError(f'DatasetCurationHook: candidate_ratio must be in (0, 1], got '
                             f'{candidate_ratio}')
        if interval < 1 or warmup_epochs < 1:
            raise ValueError(f'DatasetCurationHook: interval and warmup_epochs must be >= 1, '
                             f'got {interval} and {warmup_epochs}')
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f'DatasetCurationHook: eta must be in [0, 1], got {eta}')
        if dedup_threshold is not None and not -1.0 < dedup_threshold <= 1.0:
            raise ValueError(f'DatasetCurationHook: dedup_threshold must be in (-1, 1], got '
                             f'{dedup_threshold}')
        levels = [num_clusters] if isinstance(num_clusters, int) else list(num_clusters)
        if not levels or any(int(k) < 1 for k in levels):
            raise ValueError(f'DatasetCurationHook: num_clusters must be positive, got '
                             f'{num_clusters}')
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'DatasetCurationHook: batch_size must be >= 1, got {batch_size}')
        self.keep_ratio = keep_ratio
        self.num_clusters = [int(k) for k in levels]
        self.interval = interval
        self.warmup_epochs = warmup_epochs
        self.candidate_ratio = candidate_ratio
        self.eta = eta
        self.dedup_threshold = dedup_threshold
        self.normalize = normalize
        self.feature_fn = _resolve_feature_fn(feature_fn)
        self.dataset_cfg = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.skip_last_epoch = skip_last_epoch
        self._feature_dataset: Dataset | None = None
        self._pending: tuple[dict, int] | None = None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ set-up / resume
    def _sampler(self, runner: Any) -> CurationSampler:
        sampler = find_sampler(runner.train_dataloader)
        if sampler is None:
            raise TypeError("DatasetCurationHook needs train_dataloader.sampler = "
                            "dict(type='CurationSampler'); the training loader uses "
                            f'{type(runner.train_dataloader.sampler).__name__}')
        return sampler

    def before_train(self, runner: Any) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError('DatasetCurationHook curates between epochs; it needs an '
                            f'EpochBasedTrainLoop, not {type(runner.train_loop).__name__}')
        sampler = self._sampler(runner)
        if self._pending is not None:
            state, it = self._pending
            self._pending = None
            if runner.iter > 0 and runner.iter == it:   # resumed, not load_from
                sampler.load_state_dict(state)
                runner.logger.info(f'DatasetCurationHook: resumed an active set of '
                                   f'{sampler.num_active}/{sampler.dataset_len} samples')

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        loop = getattr(runner, '_train_loop', None)
        sampler = find_sampler(loop.dataloader) if isinstance(loop, BaseLoop) else None
        if sampler is not None:
            checkpoint[CHECKPOINT_KEY] = sampler.state_dict()

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is not None:
            self._pending = (state, int(checkpoint.get('meta', {}).get('iter', -1)))

    # ------------------------------------------------------------------ curation
    def should_curate(self, finished_epochs: int, max_epochs: int) -> bool:
        """Whether to curate after ``finished_epochs`` epochs of ``max_epochs``."""
        if self.skip_last_epoch and finished_epochs >= max_epochs:
            return False
        return (finished_epochs >= self.warmup_epochs and
                (finished_epochs - self.warmup_epochs) % self.interval == 0)

    def after_train_epoch(self, runner: Any) -> None:
        finished = runner.epoch + 1   # runner.epoch is incremented after this hook
        if not self.should_curate(finished, runner.max_epochs):
            return
        sampler = self._sampler(runner)
        summary = self.curate(runner, sampler, finished)
        self.history.append(summary)
        runner.logger.info(
            f"DatasetCurationHook (after epoch {finished}): kept {summary['kept']}/"
            f"{summary['dataset_len']} samples from {summary['candidates']} candidates "
            f"({summary['duplicates']} near-duplicates dropped, {summary['clusters']} "
            'finest clusters)')
        runner.message_hub.update_scalar('train/curation_kept', summary['kept'])

    def _get_feature_dataset(self, sampler: CurationSampler) -> Dataset:
        if self.dataset_cfg is None:
            return sampler.dataset
        if self._feature_dataset is None:
            ds = DATASETS.build(self.dataset_cfg) if isinstance(self.dataset_cfg, dict) \
                else self.dataset_cfg
            if len(ds) != sampler.dataset_len:
                raise ValueError(f'DatasetCurationHook: dataset= has {len(ds)} samples, the '
                                 f'training set {sampler.dataset_len}; they must match '
                                 'index for index')
            self._feature_dataset = ds
        return self._feature_dataset

    @torch.no_grad()
    def embed(self, runner: Any, dataset: Dataset, indices: np.ndarray) -> np.ndarray:
        """(len(indices), D) float32 embeddings of ``dataset[indices]`` by the current model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = runner.train_dataloader
        bs = self.batch_size or loader.batch_size or 1
        feat_loader = DataLoader(Subset(dataset, indices.tolist()), batch_size=bs, shuffle=False,
                                 num_workers=self.num_workers, collate_fn=loader.collate_fn)
        was_training = model.training
        model.eval()
        try:
            chunks = []
            for batch in feat_loader:
                f = self.feature_fn(model, batch)
                if not isinstance(f, Tensor) or f.ndim != 2:
                    raise TypeError('feature_fn must return a (B, D) tensor, got '
                                    f'{getattr(f, "shape", type(f).__name__)}')
                chunks.append(f.detach().float().cpu())
        finally:
            model.train(was_training)
        feats = torch.cat(chunks) if chunks else torch.empty(0, 0)
        if feats.shape[0] != len(indices):
            raise ValueError(f'feature_fn returned {feats.shape[0]} embeddings for '
                             f'{len(indices)} samples')
        return feats.numpy()

    def curate(self, runner: Any, sampler: CurationSampler, finished_epochs: int) -> dict:
        """Embed candidates, select, and set the sampler's active set (same on every rank)."""
        n = sampler.dataset_len
        seed = (sampler.seed if self.seed is None else self.seed) + finished_epochs
        rng = np.random.default_rng(seed)
        num_cand = max(1, math.ceil(self.candidate_ratio * n))
        candidates = np.sort(rng.choice(n, size=num_cand, replace=False)) \
            if num_cand < n else np.arange(n, dtype=np.int64)
        rank, world = get_dist_info()
        mine = candidates[rank::world]
        feats = self.embed(runner, self._get_feature_dataset(sampler), mine) if mine.size else \
            np.empty((0, 0), dtype=np.float32)
        parts = all_gather_object((mine, feats)) if world > 1 else [(mine, feats)]
        result: list[Any] = [None]
        if rank == 0:
            idx = np.concatenate([p[0] for p in parts])
            fs = [p[1] for p in parts if p[0].size]
            x = np.concatenate(fs)
            order = np.argsort(idx, kind='stable')
            idx, x = idx[order], x[order]
            result[0] = self.select(idx, x, n, seed)
        if world > 1:
            broadcast_object_list(result, src=0)
        selected, summary = result[0]
        sampler.set_active_indices(selected)
        summary.update(epoch=finished_epochs, dataset_len=n, kept=int(len(selected)))
        return summary

    def select(self, indices: np.ndarray, features: np.ndarray, dataset_len: int,
               seed: int) -> tuple[np.ndarray, dict]:
        """The new active set from candidate ``indices`` (M,) and their ``features`` (M, D)."""
        dup = 0
        if self.dedup_threshold is not None:
            keep = near_duplicate_mask(features, self.dedup_threshold)
            dup = int((~keep).sum())
            indices, features = indices[keep], features[keep]
        budget = min(max(1, round(self.keep_ratio * dataset_len)), len(indices))
        rows, labels = balanced_cluster_sample(features, budget, self.num_clusters, eta=self.eta,
                                               seed=seed, normalize=self.normalize)
        return indices[rows], {'candidates': int(len(indices)) + dup, 'duplicates': dup,
                               'clusters': int(labels[0].max()) + 1}
