"""k-NN probe: chunked top-k vs brute force, toy clusters with a known answer, the bank path."""
import math

import pytest
import torch
import torch.nn.functional as F

from geo3d.models.probes import KNNProbe, knn_classify, knn_topk, subsample_rows
from geo3d.structures import PointBatch


def brute_force(query, bank, label, num_classes, k, temperature):
    q, b = F.normalize(query, dim=1), F.normalize(bank, dim=1)
    out = []
    for row in q:
        sims = b @ row
        order = sorted(range(len(sims)), key=lambda i: -float(sims[i]))[:k]
        votes = [0.0] * num_classes
        for i in order:
            votes[int(label[i])] += 1.0 if temperature is None \
                else math.exp(float(sims[i]) / temperature)
        out.append(max(range(num_classes), key=lambda c: (votes[c], -c)))
    return torch.tensor(out)


@pytest.mark.parametrize('temperature', [0.07, None])
def test_matches_brute_force(temperature):
    gen = torch.Generator().manual_seed(0)
    query, bank = torch.randn(40, 6, generator=gen), torch.randn(130, 6, generator=gen)
    label = torch.randint(0, 4, (130,), generator=gen)
    pred = knn_classify(query, bank, label, 4, k=7, temperature=temperature, query_chunk=9,
                        bank_chunk=16)
    assert torch.equal(pred, brute_force(query, bank, label, 4, 7, temperature))
    s, i = knn_topk(F.normalize(query, dim=1), F.normalize(bank, dim=1), 5, 11, 13)
    ref = (F.normalize(query, dim=1) @ F.normalize(bank, dim=1).T).topk(5, dim=1)
    torch.testing.assert_close(s, ref.values)
    assert torch.equal(i, ref.indices)


def _clusters(gen, n_per, centers, noise=0.05):
    feats = [c + noise * torch.randn(n_per, c.shape[0], generator=gen) for c in centers]
    return torch.cat(feats), torch.arange(len(centers)).repeat_interleave(n_per)


def test_well_separated_clusters_and_bank():
    gen = torch.Generator().manual_seed(1)
    centers = torch.eye(3) * 4 + 1          # three directions, separated in cosine
    train_f, train_l = _clusters(gen, 50, centers)
    val_f, val_l = _clusters(gen, 20, centers)
    assert torch.equal(knn_classify(val_f, train_f, train_l, 3, k=5), val_l)

    def batch(f, lab):                     # the "extractor" is the identity on feat
        return PointBatch(coord=torch.zeros(len(f), 3), feat=f,
                          offset=torch.tensor([len(f) // 2, len(f)]), extras={'segment': lab})

    probe = KNNProbe(lambda pb: pb.feat, num_classes=4, k=5, bank_points_per_scene=30)
    train_l = train_l.clone()
    train_l[::10] = -1                     # ignored rows never enter the bank
    probe.add(batch(train_f, train_l))
    feats, labels = probe.bank()
    assert probe.bank_size == 60 and (labels >= 0).all() and feats.shape == (60, 3)
    r = probe.evaluate([batch(val_f, val_l)], class_names=['a', 'b', 'c', 'd'])
    assert r['mIoU'] == 1.0 and math.isnan(r['iou'][3]) and 'a' in r['table']


def test_subsample_rows_class_balanced():
    label = torch.tensor([0] * 90 + [1] * 8 + [-1] * 5)
    rows = subsample_rows(label, 20, class_balanced=True, generator=torch.Generator().manual_seed(0))
    got = label[rows]
    assert (got == 1).sum() == 8 and (got == 0).sum() == 10 and (got >= 0).all()
    assert subsample_rows(label, 20).numel() == 20
