"""Per-vertex label derivation for the ScanNet converter: nyu40 / tsv ids -> ScanNet20 /
ScanNet200 training indices, segments + aggregation -> per-vertex labels, class counts."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from geo3d.datasets.scannet_constants import IGNORE_INDEX, VALID_CLASS_IDS_20, VALID_CLASS_IDS_200

from .common import TSV_NAME, SceneError

def _lookup_table(ids: Sequence[int]) -> np.ndarray:
    """Dense int16 table raw id -> position in ``ids``, -1 elsewhere."""
    table = np.full(max(ids) + 1, IGNORE_INDEX, np.int16)
    table[np.asarray(ids)] = np.arange(len(ids), dtype=np.int16)
    return table


_TABLE20 = _lookup_table(VALID_CLASS_IDS_20)
_TABLE200 = _lookup_table(VALID_CLASS_IDS_200)


def _map_ids(raw: np.ndarray, table: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, np.int64)
    ok = (raw >= 0) & (raw < len(table))
    return np.where(ok, table[np.clip(raw, 0, len(table) - 1)], IGNORE_INDEX).astype(np.int16)


def nyu40_to_scannet20(nyu40: np.ndarray) -> np.ndarray:
    """nyu40 ids -> ScanNet20 training index (int16, -1 for anything not in the 20 classes)."""
    return _map_ids(nyu40, _TABLE20)


def scannet200_index(raw_id: np.ndarray) -> np.ndarray:
    """tsv ``id`` values -> ScanNet200 training index (int16, -1 if not one of the 200)."""
    return _map_ids(raw_id, _TABLE200)


def derive_labels(seg_indices: np.ndarray, seg_groups: list[dict[str, Any]],
                  label_map: dict[str, tuple[int, int]], scene_id: str = '',
                  agg_path: str | os.PathLike[str] = ''
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex labels from segments, aggregation groups and the tsv label map.

    A vertex takes the group containing its segment (when a segment is listed in several
    groups, the later group wins, as in the reference readers); vertices in no group are -1.

    Args:
        seg_indices: (N,) int segment id per vertex.
        seg_groups: from :func:`read_aggregation`.
        label_map: from :func:`read_label_map`.

    Returns:
        segment20 (N,) int16, segment200 (N,) int16, instance (N,) int16 (group ``id``).

    Raises:
        SceneError: a group's label is not a ``raw_category`` of the tsv.
    """
    n = len(seg_indices)
    seg20 = np.full(n, IGNORE_INDEX, np.int16)
    seg200 = np.full(n, IGNORE_INDEX, np.int16)
    inst = np.full(n, IGNORE_INDEX, np.int16)
    if not seg_groups or n == 0:
        return seg20, seg200, inst
    g20 = np.empty(len(seg_groups), np.int16)
    g200 = np.empty(len(seg_groups), np.int16)
    gid = np.empty(len(seg_groups), np.int16)
    seg_list, grp_list = [], []
    for k, g in enumerate(seg_groups):
        if g['label'] not in label_map:
            raise SceneError(scene_id, agg_path,
                             f'label {g["label"]!r} (segGroup id {g["id"]}) is not a raw_category '
                             f'in {TSV_NAME}')
        raw_id, nyu40 = label_map[g['label']]
        g20[k] = nyu40_to_scannet20(np.array([nyu40]))[0]
        g200[k] = scannet200_index(np.array([raw_id]))[0]
        gid[k] = g['id']
        seg_list.append(np.asarray(g['segments'], np.int64))
        grp_list.append(np.full(len(g['segments']), k, np.int64))
    segs = np.concatenate(seg_list)
    grps = np.concatenate(grp_list)
    if segs.size == 0:
        return seg20, seg200, inst
    # last occurrence of each segment id wins: sort by (segment, group order) and keep the last
    order = np.lexsort((np.arange(len(segs)), segs))
    segs, grps = segs[order], grps[order]
    last = np.r_[segs[1:] != segs[:-1], True]
    useg, ugrp = segs[last], grps[last]
    pos = np.clip(np.searchsorted(useg, seg_indices), 0, len(useg) - 1)
    hit = useg[pos] == seg_indices
    vg = ugrp[pos[hit]]
    seg20[hit] = g20[vg]
    seg200[hit] = g200[vg]
    inst[hit] = gid[vg]
    return seg20, seg200, inst


def _class_counts(seg: np.ndarray, k: int) -> list[int]:
    return np.bincount(seg[seg >= 0].astype(np.int64), minlength=k)[:k].tolist()
