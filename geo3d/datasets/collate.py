"""Batching of point-cloud samples into :class:`~geo3d.structures.PointBatch` (``collate_fn``).

Configs use ``collate_fn=dict(type='point_collate')``.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS

from geo3d.registry import FUNCTIONS
from geo3d.structures import PointBatch

_VIEW = re.compile(r'^view(\d+)$')
_VIEW_INDEX = re.compile(r'^view(\d+)_index$')


def _num_views(sample: dict) -> int:
    """Number of ``view{i}`` dicts in a multi-view sample (0 for a plain sample)."""
    ids = sorted(int(m.group(1)) for k, v in sample.items()
                 if (m := _VIEW.match(k)) and isinstance(v, dict))
    if ids and ids != list(range(len(ids))):
        raise ValueError(f'views must be named view0..view{len(ids) - 1}, got {ids}')
    return len(ids)


def _collate_views(samples: Sequence[dict], feat_keys: Iterable[str] | None,
                   num_views: int) -> dict[str, PointBatch]:
    inputs: dict[str, PointBatch] = {}
    for i in range(num_views):
        per_view = []
        for j, s in enumerate(samples):
            if f'view{i}' not in s:
                raise ValueError(f'sample {j} has no view{i}')
            d = dict(s[f'view{i}'])
            if f'view{i}_index' in s:
                d[f'view{i}_index'] = s[f'view{i}_index']
            for k, v in s.items():
                if _VIEW.match(k) or _VIEW_INDEX.match(k):
                    continue
                if isinstance(v, (np.ndarray, torch.Tensor)):
                    raise ValueError(f'multi-view sample {j}: top-level array {k!r} belongs to '
                                     'no view; put it inside the view dicts')
                d.setdefault(k, v)  # shared meta (name, ...)
            per_view.append(d)
        inputs[f'view{i}'] = PointBatch.collate(per_view, feat_keys)
    return inputs


@FUNCTIONS.register_module()
def point_collate(samples: Sequence[dict[str, Any]],
                  feat_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Collate per-sample dicts into ``{'inputs': PointBatch}``.

    Plain samples (``coord`` (n_i, 3), ``feat`` (n_i, C), per-row fields, ``inverse``,
    ``origin_*``, meta) go through :meth:`PointBatch.collate`. Multi-view samples (from
    :class:`~geo3d.datasets.transforms.MultiViewGenerator`: ``view0``, ``view1``, ... dicts and
    ``view{i}_index`` (n_i,)) give ``{'inputs': {'view0': PointBatch, 'view1': ...}}``: view
    ``i``'s dicts are batched together, ``view{i}_index`` becomes a per-row extra of view ``i``
    (original-point index WITHIN its own sample: rows of views ``a`` and ``b`` come from the
    same original point iff they have the same batch index and equal indices), and the
    sample's shared non-array entries (``name``) go to every view's ``meta``.
    """
    if len(samples) == 0:
        raise ValueError('point_collate got an empty list of samples')
    num_views = _num_views(samples[0])
    if num_views:
        return {'inputs': _collate_views(samples, feat_keys, num_views)}
    return {'inputs': PointBatch.collate(samples, feat_keys)}


# mmengine's Runner looks collate functions up with the ROOT registry's ``get``, which never
# searches child scopes (``FUNCTIONS.get('point_collate')`` is None there even with
# default_scope='geo3d'). Registering in the root too makes ``dict(type='point_collate')`` work;
# the root sees it once ``geo3d.datasets`` is imported, which building the dataset does first.
if 'point_collate' not in MMENGINE_FUNCTIONS.module_dict:
    MMENGINE_FUNCTIONS.register_module(name='point_collate', module=point_collate)
