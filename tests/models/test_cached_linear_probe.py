"""CachedLinearProbe: cache subsampling, the fitted standardised linear map, agreement with an
independent logistic-regression solver, evaluation on points, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geo3d.models.probes.cached_linear import CachedLinearProbe, StandardizedLinear
from geo3d.structures import PointBatch


def _scene_batch(feat: torch.Tensor, label: torch.Tensor, **extras) -> PointBatch:
    n = feat.shape[0]
    return PointBatch(coord=torch.zeros(n, 3), feat=feat, offset=torch.tensor([n]),
                      grid_coord=torch.zeros(n, 3, dtype=torch.long),
                      extras={'segment': label, **extras})


def _blobs(n: int, k: int, c: int, seed: int, spread: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, c, generator=g) * 3.0
    y = torch.randint(0, k, (n,), generator=g)
    # large, different per-channel scales and offsets: standardisation matters
    scale = torch.logspace(-2, 2, c)
    x = (centres[y] + spread * torch.randn(n, c, generator=g)) * scale + 50.0
    return x, y


def _extractor(pb: PointBatch) -> torch.Tensor:
    return pb.feat


def test_cache_keeps_at_most_points_per_scene_and_skips_ignored():
    x, y = _blobs(500, 3, 4, 0)
    y[:100] = -1
    probe = CachedLinearProbe(_extractor, 3, points_per_scene=150)
    probe.add(_scene_batch(x, y))
    fx, fy = probe.cache()
    assert fx.shape == (150, 4) and fy.shape == (150,)
    assert (fy >= 0).all()
    # every cached row is one of the scene's labelled rows, with its own label
    rows = [int(torch.nonzero((x == r).all(1))[0]) for r in fx]
    assert len(set(rows)) == 150 and all(int(y[i]) == int(fy[j]) for j, i in enumerate(rows))


def test_fit_standardises_and_agrees_with_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    x, y = _blobs(3000, 4, 6, 1, spread=2.5)
    xt, yt = _blobs(2000, 4, 6, 1, spread=2.5)  # same centres (same seed), fresh noise
    xt, yt = xt[1000:], yt[1000:]
    probe = CachedLinearProbe(_extractor, 4, points_per_scene=10_000, seed=3)
    probe.add(_scene_batch(x, y))
    losses = probe.fit(epochs=60, batch_size=512, lr=0.05, weight_decay=0.0)
    assert losses[-1] < losses[0]
    head = probe.head
    torch.testing.assert_close(head.mean, x.mean(0))
    torch.testing.assert_close(head.std, x.std(0))
    ours = head(xt).argmax(1)
    # independent solver on the same standardised features
    mu, sd = x.mean(0).numpy(), x.std(0).numpy()
    ref = LogisticRegression(max_iter=2000).fit((x.numpy() - mu) / sd, y.numpy())
    theirs = ref.predict((xt.numpy() - mu) / sd)
    agree = float((ours.numpy() == theirs).mean())
    acc_ours = float((ours == yt).float().mean())
    acc_ref = float((theirs == yt.numpy()).mean())
    assert agree > 0.95, agree
    assert abs(acc_ours - acc_ref) < 0.03, (acc_ours, acc_ref)


def test_head_is_one_affine_map():
    head = StandardizedLinear(5, 3)
    head.mean.copy_(torch.arange(5.0))
    head.std.copy_(torch.linspace(0.5, 2.0, 5))
    x = torch.randn(7, 5)
    w = head.linear.weight / head.std
    b = head.linear.bias - (head.linear.weight * head.mean / head.std).sum(1)
    torch.testing.assert_close(head(x), x @ w.T + b)


def test_evaluate_reports_miou_on_points_through_inverse():
    x, y = _blobs(800, 3, 4, 2, spread=0.3)
    probe = CachedLinearProbe(_extractor, 3, points_per_scene=800)
    probe.add(_scene_batch(x, y))
    probe.fit(epochs=30, batch_size=256, lr=0.05)
    # 400 original points mapped onto the 200 voxels: point i -> voxel i % 200
    inverse = torch.arange(400) % 200
    val = _scene_batch(x[:200], y[:200], inverse=inverse, origin_segment=y[:200][inverse],
                       origin_offset=torch.tensor([400]))
    r = probe.evaluate([val], class_names=['a', 'b', 'c'])
    assert r['confusion'].sum() == 400
    assert r['mIoU'] > 0.95 and 'a' in r['table']


def test_bad_input():
    probe = CachedLinearProbe(_extractor, 3)
    with pytest.raises(ValueError, match='empty'):
        probe.fit()
    with pytest.raises(RuntimeError, match='fit'):
        probe.predict(_scene_batch(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match='points_per_scene'):
        CachedLinearProbe(_extractor, 3, points_per_scene=0)
