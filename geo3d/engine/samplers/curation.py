"""A training sampler over a curated (pruned, rebalanced) subset of the dataset.

The sampler holds the *active set*: the dataset indices currently trained on. At first it is the
whole dataset; :class:`~geo3d.engine.hooks.curation.DatasetCurationHook` replaces it every few
epochs (dynamic dataset curation, Kerdreux et al., CVPRW 2025, arXiv 2504.06962). The sampler
lives in the main process and builds a fresh index list at every ``iter()``, so a new active set
takes effect at the next epoch even with ``persistent_workers=True``.

Each epoch is a permutation of the active set seeded by ``seed + epoch`` (identical on every
rank), padded to a multiple of the world size and sharded ``rank::world_size`` as mmengine's
``DefaultSampler``. With ``keep_epoch_length=True`` (default) an epoch still has
``len(dataset)`` samples, drawn as consecutive shuffled passes over the active set, so that
``len(dataloader)`` — from which mmengine derives ``max_iters``, iteration-based schedules and the
EMA momentum schedule — does not change when the set is pruned. With ``False`` an epoch is one
pass over the active set (fewer iterations per epoch after pruning).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence, Sized

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from geo3d.registry import DATA_SAMPLERS

__all__ = ['CurationSampler']


@DATA_SAMPLERS.register_module()
class CurationSampler(Sampler[int]):
    """Distributed-aware sampler of a curated subset (the *active set*) of ``dataset``.

    Args:
        dataset: the training dataset (only its length is used).
        shuffle: permute each epoch (``seed + epoch``); False keeps the active set's order.
        seed: shuffling seed, identical on every rank; None = a seed synchronised across ranks
            (mmengine's ``sync_random_seed``).
        round_up: pad each epoch to a multiple of the world size (as ``DefaultSampler``);
            False gives ranks 0..r-1 one sample more than the others.
        keep_epoch_length: an epoch has ``len(dataset)`` samples whatever the active set's size
            (see the module docstring); False: one pass over the active set.
        num_replicas, rank: override the process group's world size and rank (tests, tools).
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None,
                 round_up: bool = True, keep_epoch_length: bool = True,
                 num_replicas: int | None = None, rank: int | None = None) -> None:
        dist_rank, dist_world = get_dist_info()
        self.world_size = dist_world if num_replicas is None else int(num_replicas)
        self.rank = dist_rank if rank is None else int(rank)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f'CurationSampler: rank {self.rank} is not in [0, num_replicas='
                             f'{self.world_size})')
        self.dataset = dataset
        self.dataset_len = len(dataset)
        if self.dataset_len == 0:
            raise ValueError('CurationSampler: the dataset is empty')
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.round_up = round_up
        self.keep_epoch_length = keep_epoch_length
        self.epoch = 0
        self._active = np.arange(self.dataset_len, dtype=np.int64)

    # ------------------------------------------------------------------ active set
    @property
    def active_indices(self) -> np.ndarray:
        """The active dataset indices, sorted ascending (a copy; (M,) int64)."""
        return self._active.copy()

    @property
    def num_active(self) -> int:
        return int(self._active.size)

    def set_active_indices(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> None:
        """Replace the active set; takes effect at the next ``iter()`` (the next epoch).

        Raises:
            ValueError: ``indices`` is empty, not 1-D integers, out of ``[0, len(dataset))``, or
                has duplicates.
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        arr = np.asarray(indices)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f'CurationSampler: active indices must be a non-empty 1-D sequence, '
                             f'got shape {arr.shape}')
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f'CurationSampler: active indices must be integers, got dtype '
                             f'{arr.dtype}')
        arr = arr.astype(np.int64)
        bad = arr[(arr < 0) | (arr >= self.dataset_len)]
        if bad.size:
            raise ValueError(f'CurationSampler: active indices {bad[:5].tolist()} are outside '
                             f'the dataset [0, {self.dataset_len})')
        uniq = np.unique(arr)
        if uniq.size != arr.size:
            raise ValueError('CurationSampler: active indices contain duplicates')
        self._active = uniq

    def reset(self) -> None:
        """Make the whole dataset active again."""
        self._active = np.arange(self.dataset_len, dtype=np.int64)

    # ------------------------------------------------------------------ sampling
    def _epoch_size(self) -> int:
        return self.dataset_len if self.keep_epoch_length else self.num_active

    def _total_size(self) -> int:
        n = self._epoch_size()
        return math.ceil(n / self.world_size) * self.world_size if self.round_up else n

    def epoch_indices(self) -> list[int]:
        """This epoch's indices over all ranks, before sharding (``total_size`` of them)."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        active = torch.from_numpy(self._active)
        total = self._total_size()
        passes = []
        count = 0
        while count < total:   # consecutive passes over the active set
            if self.shuffle:
                passes.append(active[torch.randperm(active.numel(), generator=g)])
            else:
                passes.append(active)
            count += active.numel()
        indices = torch.cat(passes)
        n = self._epoch_size()
        # the first n are the epoch; round_up pads with the epoch's first samples
        epoch = indices[:n]
        if total > n:
            epoch = torch.cat([epoch] * (total // n + 1))[:total]
        return epoch.tolist()

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices()
        return iter(indices[self.rank:len(indices):self.world_size])

    def __len__(self) -> int:
        """The number of samples this rank yields per epoch."""
        total = self._total_size()
        if self.round_up:
            return total // self.world_size
        return math.ceil((total - self.rank) / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (the shuffling seed is ``seed + epoch``); called by mmengine's loops."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The active set and the dataset length it refers to (plain Python types)."""
        return {'active_indices': self._active.tolist(), 'dataset_len': self.dataset_len}

    def load_state_dict(self, state: dict) -> None:
        """Restore the active set written by :meth:`state_dict`.

        Raises:
            ValueError: the state refers to a dataset of another length, or lacks the indices.
        """
        if not isinstance(state, dict) or 'active_indices' not in state:
            raise ValueError("CurationSampler: a state dict needs 'active_indices'")
        if int(state.get('dataset_len', -1)) != self.dataset_len:
            raise ValueError(f"CurationSampler: the saved active set refers to a dataset of "
                             f"{state.get('dataset_len')} samples, this dataset has "
                             f'{self.dataset_len}')
        self.set_active_indices(np.asarray(state['active_indices'], dtype=np.int64))
