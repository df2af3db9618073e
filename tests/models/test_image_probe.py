"""Image probe: logistic regression vs scikit-learn, k-NN vs scikit-learn, frozen features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from geo3d.models.probes.image_probe import (ImageLinearProbe, build_eval_loader,
                                             extract_image_features, fit_linear_probe,
                                             run_image_probe, top1_accuracy)
from geo3d.models.probes.knn_probe import knn_classify

TINY_VIT = dict(type='SmallViT', img_size=8, patch_size=4, embed_dim=16, depth=1, num_heads=2)


def _blobs(n: int = 90, c: int = 6, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, c, generator=g, dtype=torch.float64) * 1.5
    y = torch.arange(n) % k
    x = centers[y] + torch.randn(n, c, generator=g, dtype=torch.float64)
    return x * torch.linspace(0.5, 3.0, c, dtype=torch.float64) + 2.0, y


def test_logistic_regression_matches_sklearn() -> None:
    x, y = _blobs()
    lam = 0.05
    clf = fit_linear_probe(x, y, 3, weight_decay=lam, max_iter=500, tolerance=1e-10)
    xs = StandardScaler().fit_transform(x.numpy())
    ref = LogisticRegression(C=1.0 / (lam * x.shape[0]), tol=1e-12, max_iter=10000).fit(xs, y)
    # W is unique (strictly convex in W); the intercepts only up to a common shift
    np.testing.assert_allclose(clf.linear.weight.detach().numpy(), ref.coef_, rtol=1e-4,
                               atol=1e-6)
    probs = torch.softmax(clf(x), 1).detach().numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(xs), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('temperature', [None, 0.1])
def test_knn_vote_matches_sklearn(temperature) -> None:
    bank, bank_y = _blobs(60, seed=1)
    query, _ = _blobs(25, seed=2)
    pred = knn_classify(query.float(), bank.float(), bank_y, 3, k=7, temperature=temperature)
    weights = 'uniform' if temperature is None else \
        (lambda d: np.exp((1.0 - d) / temperature))  # cosine distance = 1 - similarity
    ref = KNeighborsClassifier(n_neighbors=7, metric='cosine', weights=weights,
                               algorithm='brute').fit(bank.numpy(), bank_y.numpy())
    np.testing.assert_array_equal(pred.numpy(), ref.predict(query.numpy()))


def _loader(split: str = 'train', n: int = 12) -> torch.utils.data.DataLoader:
    return build_eval_loader(dict(batch_size=5, dataset=dict(
        type='DigitsDataset', split=split, image_size=8, max_samples=n,
        pipeline=[dict(type='PackImageViews', meta_keys=('gt_label',))])))


def test_features_are_the_frozen_backbone_of_normalised_images() -> None:
    torch.manual_seed(0)
    probe = ImageLinearProbe(TINY_VIT, num_classes=10)
    loader = _loader()
    feats, labels = extract_image_features(probe.backbone, loader, probe.data_preprocessor)
    ds = loader.dataset
    images = torch.stack([ds[i]['inputs'] for i in range(len(ds))]).float() / 255.0
    with torch.no_grad():
        expected = probe.backbone((images - 0.5) / 0.5)
    torch.testing.assert_close(feats, expected)
    assert labels.tolist() == ds.labels.tolist()
    probe.train()
    assert not probe.backbone.training
    assert not any(p.requires_grad for p in probe.backbone.parameters())


def test_checkpoint_weights_selection_and_perfect_fit(tmp_path) -> None:
    torch.manual_seed(1)
    donor = ImageLinearProbe(TINY_VIT, num_classes=10).backbone
    ckpt = tmp_path / 'ssl.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in donor.state_dict().items()}
                | {'neck.w': torch.zeros(1)}}, ckpt)
    probe = ImageLinearProbe(TINY_VIT, num_classes=10, backbone_checkpoint=str(ckpt),
                             weight_decay=[1e-4, 10.0], knn_k=1, knn_temperature=None)
    assert probe.loaded_prefix == 'backbone.'
    for a, b in zip(probe.backbone.state_dict().values(), donor.state_dict().values()):
        assert torch.equal(a, b)
    # train = val: a weakly regularised probe fits its own training set, 1-NN finds itself
    r = probe.evaluate(_loader(n=20), _loader(n=20))
    assert r['val/knn_top1'] == 1.0 and r['val/linear_top1'] == 1.0
    assert r['weight_decay'] == 1e-4 and r['val_top1_per_weight_decay'][10.0] < 1.0
    assert r['num_train'] == 20 and r['feature_dim'] == 16


def test_run_image_probe_and_errors() -> None:
    loaders = {f'{s}_dataloader': dict(batch_size=8, dataset=dict(
        type='DigitsDataset', split=s, image_size=8, max_samples=10,
        pipeline=[dict(type='PackImageViews')])) for s in ('train', 'val', 'test')}
    cfg = dict(model=dict(type='ImageLinearProbe', backbone=TINY_VIT, num_classes=10),
               **loaders)
    r = run_image_probe(cfg, None, device='cpu')
    assert r['checkpoint'] == 'none' and r['num_test'] == 10
    # randomness.seed makes the random-init baseline reproducible
    seeded = dict(cfg, randomness=dict(seed=3))
    torch.manual_seed(0)
    a = run_image_probe(seeded, None, device='cpu')
    torch.manual_seed(1)
    assert run_image_probe(seeded, None, device='cpu') == a
    assert all(0.0 <= r[f'{s}/{m}'] <= 1.0 for s in ('val', 'test') for m in ('linear_top1',
                                                                              'knn_top1'))
    with pytest.raises(ValueError, match='must be ImageLinearProbe'):
        run_image_probe(dict(cfg, model=dict(type='SimCLR')), None)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 3\)'):
        fit_linear_probe(torch.randn(4, 2), torch.tensor([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match='equal, non-empty shapes'):
        top1_accuracy(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match='no dataset'):
        build_eval_loader(dict(batch_size=2))
