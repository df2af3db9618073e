"""Choosing a diverse, cluster-balanced subset of samples from their embeddings.

The curation of Kerdreux et al. ("Efficient Self-Supervised Learning for Earth Observation via
Dynamic Dataset Curation", CVPRW 2025, arXiv 2504.06962) re-selects the training set with the
*balanced hierarchical sampling* of Vo et al. ("Automatic Data Curation for Self-Supervised
Learning: A Clustering-Based Approach", TMLR 2024, arXiv 2405.15613):

1. hierarchical k-means: k-means on the (L2-normalised) embeddings, then k-means on the
   centroids of the level below, and so on (``num_clusters`` from the finest level up);
2. balanced sampling, top-down: the budget is split over the top-level clusters as evenly as
   their sizes allow (``balanced_allocation``: every cluster gets ``min(size, q)`` with the
   largest such ``q``, the remainder going one by one to randomly chosen larger clusters), then
   each cluster's share over its child clusters in the same way, down to the finest clusters;
3. inside a finest cluster, a fraction ``eta`` of its share are the members closest to its
   centroid (typical samples), the rest are drawn at random among the others (diversity). Vo et
   al. draw at random (``eta = 0``); Kerdreux et al. describe a parameter trading the two, whose
   exact form is not published — this split is geo3d's reading of it.

Over-represented clusters (e.g. many near-duplicates of one image) are thereby cut down to the
share of the others. ``near_duplicate_mask`` removes near-duplicates explicitly, with the rule of
SemDeDup (Abbas et al., 2023, arXiv 2303.09540): a sample is dropped when its cosine similarity to
an earlier sample exceeds a threshold.

k-means is scikit-learn's ``KMeans`` (k-means++ initialisation, seeded).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ['balanced_allocation', 'hierarchical_kmeans', 'balanced_cluster_sample',
           'near_duplicate_mask', 'l2_normalize']


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` (N, D) scaled to unit length (zero rows stay zero)."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, eps)


def balanced_allocation(sizes: Sequence[int] | np.ndarray, budget: int,
                        rng: np.random.Generator | None = None) -> np.ndarray:
    """Split ``budget`` over groups of ``sizes`` as evenly as possible (water filling).

    Each group gets ``min(size, q)`` for the largest integer ``q`` with a total ``<= budget``;
    the remaining ``r`` units go one each to ``r`` groups still larger than ``q``, chosen by
    ``rng`` (the first ones when ``rng`` is None).

    Args:
        sizes: (K,) non-negative group sizes.
        budget: total to allocate, ``0 <= budget <= sum(sizes)``.

    Returns:
        (K,) int64 counts with ``counts <= sizes`` and ``counts.sum() == budget``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError(f'sizes must be a 1-D array of non-negative integers, got {sizes}')
    total = int(sizes.sum())
    if not 0 <= budget <= total:
        raise ValueError(f'budget must be in [0, {total}] (the total size), got {budget}')
    if budget == total:
        return sizes.copy()
    # largest q with sum(min(sizes, q)) <= budget: bisection on q in [0, max(sizes)]
    lo, hi = 0, int(sizes.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(sizes, mid).sum()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    counts = np.minimum(sizes, lo)
    rest = budget - int(counts.sum())
    if rest:
        larger = np.flatnonzero(sizes > lo)   # rest < len(larger), else q could be lo + 1
        pick = larger[:rest] if rng is None else rng.choice(larger, size=rest, replace=False)
        counts[pick] += 1
    return counts


def hierarchical_kmeans(features: np.ndarray, num_clusters: Sequence[int], seed: int = 0,
                        max_iter: int = 300, n_init: int | str = 'auto'
                        ) -> list[np.ndarray]:
    """k-means on ``features``, then on the centroids of each level, finest level first.

    Args:
        features: (N, D) float embeddings.
        num_clusters: clusters per level, finest first (e.g. ``(64, 8)``); each is capped by
            the number of items at that level.

    Returns:
        ``labels``: level 0 is (N,) — the cluster of each sample; level l > 0 is (K_{l-1},) —
        the level-l cluster of each level-(l-1) cluster.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f'features must be a non-empty (N, D) array, got shape {x.shape}')
    if not np.isfinite(x).all():
        raise ValueError('features contain NaN or inf')
    levels = [int(k) for k in num_clusters]
    if not levels or any(k < 1 for k in levels):
        raise ValueError(f'num_clusters must be positive integers, got {list(num_clusters)}')
    try:
        from sklearn.cluster import KMeans
    except ImportError as e:   # imported here so that geo3d.engine imports without it
        raise ImportError('hierarchical_kmeans needs scikit-learn: pip install scikit-learn') \
            from e
    out = []
    for level, k in enumerate(levels):
        k = min(k, x.shape[0])
        if k == 1:
            labels = np.zeros(x.shape[0], dtype=np.int64)
            centers = x.mean(0, keepdims=True)
        else:
            km = KMeans(n_clusters=k, random_state=seed + level, max_iter=max_iter,
                        n_init=n_init).fit(x)
            labels = km.labels_.astype(np.int64)
            # k-means can leave clusters empty on duplicate points: renumber 0..k'-1
            _, labels = np.unique(labels, return_inverse=True)
            centers = np.stack([x[labels == c].mean(0) for c in range(labels.max() + 1)])
        out.append(labels)
        x = centers
    return out


def _within_cluster(members: np.ndarray, count: int, features: np.ndarray, eta: float,
                    rng: np.random.Generator) -> np.ndarray:
    """``count`` of ``members``: ``round(eta * count)`` closest to the centroid, the rest random."""
    if count >= members.size:
        return members
    n_close = int(round(eta * count))
    chosen = np.empty(0, dtype=np.int64)
    rest = members
    if n_close:
        f = features[members]
        d = np.linalg.norm(f - f.mean(0, keepdims=True), axis=1)
        order = np.argsort(d, kind='stable')
        chosen = members[order[:n_close]]
        rest = members[order[n_close:]]
    n_rand = count - n_close
    if n_rand:
        chosen = np.concatenate([chosen, rng.choice(rest, size=n_rand, replace=False)])
    return chosen


def balanced_cluster_sample(features: np.ndarray, budget: int,
                            num_clusters: int | Sequence[int] = 10, eta: float = 0.0,
                            seed: int = 0, normalize: bool = True, max_iter: int = 300
                            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Choose ``budget`` rows of ``features`` balanced over a hierarchical k-means clustering.

    Args:
        features: (N, D) embeddings.
        budget: number of rows to keep (capped at N).
        num_clusters: clusters per level, finest first; an int = one level.
        eta: fraction of each finest cluster's share taken closest to its centroid, in [0, 1].
        seed: seed of k-means and of the random choices.
        normalize: L2-normalise the embeddings first (cosine geometry, as for SSL features).

    Returns:
        ``(selected, labels)``: (budget,) sorted int64 row indices and the clustering
        (:func:`hierarchical_kmeans`'s output).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f'eta must be in [0, 1], got {eta}')
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f'features must be (N, D), got shape {x.shape}')
    if normalize:
        x = l2_normalize(x)
    n = x.shape[0]
    budget = min(int(budget), n)
    if budget < 0:
        raise ValueError(f'budget must be >= 0, got {budget}')
    levels = [num_clusters] if isinstance(num_clusters, (int, np.integer)) else list(num_clusters)
    labels = hierarchical_kmeans(x, levels, seed=seed, max_iter=max_iter)
    rng = np.random.default_rng(seed)

    # members of every cluster at every level, as sample indices
    point_label = [labels[0]]
    for lab in labels[1:]:
        point_label.append(lab[point_label[-1]])
    top = len(labels) - 1

    def split(level: int, samples: np.ndarray, count: int) -> list[np.ndarray]:
        """``count`` of ``samples`` balanced over their level-``level`` clusters."""
        lab = point_label[level][samples]
        groups = [samples[lab == c] for c in np.unique(lab)]
        shares = balanced_allocation([g.size for g in groups], count, rng)
        out: list[np.ndarray] = []
        for g, s in zip(groups, shares):
            if not s:
                continue
            if level == 0:   # a finest cluster: choose inside it
                out.append(_within_cluster(g, int(s), x, eta, rng))
            else:            # split its share over its child clusters
                out += split(level - 1, g, int(s))
        return out

    parts = split(top, np.arange(n, dtype=np.int64), budget)
    selected = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    return selected.astype(np.int64), labels


def near_duplicate_mask(features: np.ndarray | torch.Tensor, threshold: float,
                        block: int = 1024) -> np.ndarray:
    """Which rows to keep: row i is dropped if ``cos(f_i, f_j) > threshold`` for some ``j < i``.

    Args:
        features: (N, D) embeddings.
        threshold: cosine similarity above which two samples count as duplicates, in (-1, 1].
        block: rows compared at once (memory ``block x N``).

    Returns:
        (N,) bool keep mask (row 0 is always kept).
    """
    if not -1.0 < threshold <= 1.0:
        raise ValueError(f'threshold must be in (-1, 1], got {threshold}')
    f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if f.ndim != 2:
        raise ValueError(f'features must be (N, D), got shape {tuple(f.shape)}')
    f = torch.nn.functional.normalize(f, dim=1)
    n = f.shape[0]
    keep = torch.ones(n, dtype=torch.bool)
    for start in range(0, n, block):
        rows = f[start:start + block]
        sim = rows @ f[:start + rows.shape[0]].T          # (b, start + b)
        i = torch.arange(rows.shape[0]).unsqueeze(1) + start
        j = torch.arange(sim.shape[1]).unsqueeze(0)
        sim = sim.masked_fill(j >= i, -2.0)              # only earlier samples
        keep[start:start + rows.shape[0]] = ~(sim > threshold).any(1)
    return keep.numpy()
