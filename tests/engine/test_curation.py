"""Dynamic dataset curation: CurationSampler (active set, sharding, determinism, state),
the cluster-balanced selection maths, and DatasetCurationHook in an mmengine runner (planted
duplicates, resume, load_from, the distributed gather path)."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader, Dataset

import geo3d.engine.hooks.curation as curation_mod
from geo3d.engine.hooks.curation import DatasetCurationHook, pool_features
from geo3d.engine.samplers.cluster_selection import (balanced_allocation,
                                                     balanced_cluster_sample,
                                                     hierarchical_kmeans, near_duplicate_mask)
from geo3d.engine.samplers.curation import CurationSampler
from geo3d.registry import DATA_SAMPLERS, DATASETS, HOOKS, MODELS


# ---------------------------------------------------------------- sampler
def _sampler(n=20, **kw) -> CurationSampler:
    kw.setdefault('seed', 3)
    return CurationSampler(list(range(n)), **kw)


def test_sampler_covers_exactly_the_active_set() -> None:
    s = _sampler(keep_epoch_length=False)
    assert sorted(s) == list(range(20)) and len(s) == 20
    active = [1, 4, 5, 9, 11, 17, 19]
    s.set_active_indices(active)
    for epoch in range(3):
        s.set_epoch(epoch)
        got = list(s)
        assert sorted(got) == active and len(s) == len(got) == 7
    # keep_epoch_length: len(dataset) samples from the active set, as even as possible
    s = _sampler(keep_epoch_length=True)
    s.set_active_indices(active)
    got = list(s)
    assert len(got) == len(s) == 20
    counts = Counter(got)
    assert set(counts) == set(active) and set(counts.values()) <= {2, 3}


def test_sampler_shards_disjointly_across_two_ranks() -> None:
    active = list(range(0, 18, 2))                       # 9 samples over 2 ranks
    for round_up in (True, False):
        shards = []
        for rank in (0, 1):
            s = _sampler(keep_epoch_length=False, round_up=round_up, num_replicas=2, rank=rank)
            s.set_active_indices(active)
            s.set_epoch(5)
            shards.append(list(s))
            assert len(shards[-1]) == len(s)
        both = shards[0] + shards[1]
        assert set(both) == set(active)
        if round_up:   # padded to 10: equal shards, one sample repeated
            assert len(shards[0]) == len(shards[1]) == 5 and len(both) == 10
        else:          # disjoint, 5 + 4
            assert [len(x) for x in shards] == [5, 4] and len(set(both)) == 9
    # the union over ranks is the single-process epoch order, interleaved
    single = _sampler(keep_epoch_length=False, round_up=False)
    single.set_active_indices(active)
    single.set_epoch(5)
    order = list(single)
    assert shards[0] == order[0::2] and shards[1] == order[1::2]


def test_sampler_is_deterministic_by_seed_and_epoch() -> None:
    a, b, c = _sampler(seed=7), _sampler(seed=7), _sampler(seed=8)
    for s in (a, b, c):
        s.set_active_indices(range(3, 15))
    assert list(a) == list(b) != list(c)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    unshuffled = _sampler(shuffle=False, keep_epoch_length=False)
    unshuffled.set_active_indices([9, 2, 5])
    assert list(unshuffled) == [2, 5, 9]


def test_sampler_state_and_errors() -> None:
    s = _sampler()
    s.set_active_indices(np.array([2, 7, 3]))
    state = s.state_dict()
    assert state == {'active_indices': [2, 3, 7], 'dataset_len': 20}
    t = _sampler()
    t.load_state_dict(state)
    assert t.active_indices.tolist() == [2, 3, 7]
    with pytest.raises(ValueError, match='dataset of 20 samples, this dataset has 21'):
        _sampler(21).load_state_dict(state)
    with pytest.raises(ValueError, match=r'outside the dataset \[0, 20\)'):
        s.set_active_indices([0, 20])
    with pytest.raises(ValueError, match='duplicates'):
        s.set_active_indices([1, 1])
    with pytest.raises(ValueError, match='non-empty'):
        s.set_active_indices([])
    with pytest.raises(ValueError, match='integers'):
        s.set_active_indices([0.5])
    with pytest.raises(ValueError, match='rank 2 is not in'):
        _sampler(num_replicas=2, rank=2)
    built = DATA_SAMPLERS.build(dict(type='CurationSampler', seed=0),
                                default_args=dict(dataset=list(range(4))))
    assert isinstance(built, CurationSampler) and built.num_active == 4


# ---------------------------------------------------------------- selection maths
def _round_robin(sizes, budget):
    """Slow reference: hand out one unit at a time, cycling over the groups in order."""
    counts = [0] * len(sizes)
    while budget:
        for i, s in enumerate(sizes):
            if budget and counts[i] < s:
                counts[i] += 1
                budget -= 1
    return counts


def test_balanced_allocation() -> None:
    assert balanced_allocation([40, 3, 3, 3, 3], 16).tolist() == [4, 3, 3, 3, 3]
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(0, 12, size=rng.integers(1, 7)).tolist()
        budget = int(rng.integers(0, sum(sizes) + 1))
        assert balanced_allocation(sizes, budget).tolist() == _round_robin(sizes, budget)
        # random tie-breaking: every group at min(size, q) or min(size, q + 1), q the level
        got = balanced_allocation(sizes, budget, np.random.default_rng(1))
        q = max(k for k in range(max(sizes) + 1) if np.minimum(sizes, k).sum() <= budget)
        assert got.sum() == budget
        assert all(min(s, q) <= g <= min(s, q + 1) for s, g in zip(sizes, got))
    with pytest.raises(ValueError, match='budget must be in'):
        balanced_allocation([1, 2], 4)


def _planted(dup=40, clusters=4, per=3, dim=8, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """``dup`` near-copies of one vector, then ``clusters`` tight groups of ``per`` vectors."""
    rng = np.random.default_rng(seed)
    centers = np.eye(dim)[:clusters + 1] * 10.0
    feats = [centers[0] + 1e-3 * rng.standard_normal((dup, dim))]
    for c in range(1, clusters + 1):
        feats.append(centers[c] + 0.3 * rng.standard_normal((per, dim)))
    group = np.repeat(np.arange(clusters + 1), [dup] + [per] * clusters)
    return np.concatenate(feats).astype(np.float32), group


def test_balanced_sample_prunes_planted_duplicates() -> None:
    feats, group = _planted()
    sel, labels = balanced_cluster_sample(feats, 16, num_clusters=5, seed=0)
    assert len(sel) == 16 and len(set(sel.tolist())) == 16
    # k-means found the planted groups ...
    for g in range(5):
        assert len(set(labels[0][group == g])) == 1
    # ... and the budget is split evenly: 4 of the 40 copies, every distinct sample
    assert Counter(group[sel].tolist()) == {0: 4, 1: 3, 2: 3, 3: 3, 4: 3}
    # two levels: 5 clusters grouped into 2, still every distinct group represented
    sel2, labels2 = balanced_cluster_sample(feats, 16, num_clusters=(5, 2), seed=1)
    assert len(labels2) == 2 and labels2[1].shape == (5,)
    assert set(group[sel2].tolist()) == {0, 1, 2, 3, 4}
    assert (group[sel2] == 0).sum() <= 8
    # deterministic by seed
    assert np.array_equal(balanced_cluster_sample(feats, 16, 5, seed=0)[0], sel)


def test_eta_prefers_points_near_the_centroid() -> None:
    rng = np.random.default_rng(0)
    blob = rng.standard_normal((30, 2)) * 0.1
    blob[:3] += 2.0                                   # three outliers of the one cluster
    dist = np.linalg.norm(blob - blob.mean(0), axis=1)
    sel, _ = balanced_cluster_sample(blob, 10, num_clusters=1, eta=1.0, normalize=False)
    assert sorted(sel.tolist()) == sorted(np.argsort(dist)[:10].tolist())
    sel, _ = balanced_cluster_sample(blob, 10, num_clusters=1, eta=0.5, normalize=False)
    assert set(np.argsort(dist)[:5].tolist()) <= set(sel.tolist())


def test_hierarchical_kmeans_levels() -> None:
    feats, group = _planted(dup=6)
    labels = hierarchical_kmeans(feats, (5, 2, 1), seed=0)
    assert [lab.shape for lab in labels] == [(18,), (5,), (2,)]
    assert len(np.unique(labels[0])) == 5 and labels[2].tolist() == [0, 0]
    with pytest.raises(ValueError, match='NaN'):
        hierarchical_kmeans(np.full((3, 2), np.nan), [2])
    with pytest.raises(ValueError, match='positive integers'):
        hierarchical_kmeans(feats, [0])


def test_near_duplicate_mask_against_loops() -> None:
    rng = np.random.default_rng(0)
    f = rng.standard_normal((37, 5))
    f[10] = f[3] * 2.0                                # a scaled copy: cosine 1
    f[20] = f[3] + 1e-4
    keep = near_duplicate_mask(f, 0.999, block=8)
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    want = [not any(fn[i] @ fn[j] > 0.999 for j in range(i)) for i in range(37)]
    assert keep.tolist() == want and not keep[10] and not keep[20] and keep[3]
    assert near_duplicate_mask(f, 0.5).sum() < keep.sum()


def test_pool_features() -> None:
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(pool_features(x), x.mean((2, 3)))
    torch.testing.assert_close(pool_features((x[:, :, 0, 0], x)), x.mean((2, 3)))
    with pytest.raises(TypeError, match='feature_fn'):
        pool_features({'a': x})


# ---------------------------------------------------------------- hook in a runner
FEATS, GROUP = _planted()


@MODELS.register_module(force=True)
class _CurationToyModel(BaseModel):
    """``mode='tensor'`` returns the planted embedding itself."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 2)

    def forward(self, inputs, index=None, mode='tensor'):
        if mode == 'tensor':
            return inputs
        return {'loss': self.net(inputs).pow(2).mean()}


@DATASETS.register_module(force=True)
class _PlantedDataset(Dataset):
    def __len__(self) -> int:
        return len(FEATS)

    def __getitem__(self, i: int) -> dict:
        return {'inputs': torch.from_numpy(FEATS[i]), 'index': i}


@HOOKS.register_module(force=True)
class _SeenHook(Hook):
    """Records the dataset indices trained on, per epoch."""

    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.seen.setdefault(runner.epoch, []).extend(data_batch['index'].tolist())


class _Crash(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class _CurationCrash(Hook):
    priority = 'LOWEST'

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == 2:
            raise _Crash


def _runner(work_dir, name, crash=False, resume=False, load_from=None, **hook_kw):
    hook = dict(type='DatasetCurationHook', keep_ratio=16 / 52, num_clusters=5, seed=0)
    hook.update(hook_kw)
    hooks = [hook, dict(type='_SeenHook')] + ([dict(type='_CurationCrash')] if crash else [])
    return Runner(
        model=dict(type='_CurationToyModel'), work_dir=str(work_dir),
        train_dataloader=dict(dataset=dict(type='_PlantedDataset'), batch_size=8,
                              sampler=dict(type='CurationSampler', seed=0,
                                           keep_epoch_length=False),
                              collate_fn=dict(type='default_collate'), num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks, default_scope='geo3d', randomness=dict(seed=0), resume=resume,
        load_from=load_from, log_level='WARNING', experiment_name=f'{work_dir.name}-{name}')


def _hook(runner, cls):
    return next(h for h in runner.hooks if isinstance(h, cls))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('curation')
    straight = _runner(tmp / 'straight', 'straight')
    straight.train()
    crashed = _runner(tmp / 'split', 'crash', crash=True)
    with pytest.raises(_Crash):
        crashed.train()
    resumed = _runner(tmp / 'split', 'resume', resume=True)
    resumed.train()
    return SimpleNamespace(tmp=tmp, straight=straight, crashed=crashed, resumed=resumed)


def test_hook_prunes_planted_duplicates(runs) -> None:
    hook = _hook(runs.straight, DatasetCurationHook)
    seen = _hook(runs.straight, _SeenHook).seen
    assert [h['epoch'] for h in hook.history] == [1, 2]       # not after the last epoch
    assert all(h['kept'] == 16 and h['candidates'] == 52 for h in hook.history)
    assert sorted(seen[0]) == list(range(52))                  # epoch 1: everything
    for epoch in (1, 2):                                        # then the curated subset
        counts = Counter(GROUP[seen[epoch]].tolist())
        assert counts == {0: 4, 1: 3, 2: 3, 3: 3, 4: 3}
        assert len(set(seen[epoch])) == 16
    assert sorted(seen[2]) == runs.straight.train_dataloader.sampler.active_indices.tolist()
    assert runs.straight.message_hub.get_scalar('train/curation_kept').current() == 16


def test_resume_restores_the_active_set(runs) -> None:
    ck = torch.load(runs.tmp / 'split' / 'epoch_2.pth', weights_only=False)
    assert len(ck['curation_sampler']['active_indices']) == 16
    straight_seen = _hook(runs.straight, _SeenHook).seen
    resumed_seen = _hook(runs.resumed, _SeenHook).seen
    assert list(resumed_seen) == [2]                           # only the third epoch ran
    assert resumed_seen[2] == straight_seen[2]                 # same subset, same order
    assert _hook(runs.crashed, _SeenHook).seen[1] == straight_seen[1]


def test_load_from_starts_from_the_whole_dataset(runs) -> None:
    fresh = _runner(runs.tmp / 'load', 'load', load_from=str(runs.tmp / 'split' / 'epoch_2.pth'),
                    warmup_epochs=5)
    fresh.train()
    seen = _hook(fresh, _SeenHook).seen
    assert all(sorted(v) == list(range(52)) for v in seen.values())


def test_dedup_threshold_and_candidate_ratio(tmp_path) -> None:
    runner = _runner(tmp_path, 'dedup', dedup_threshold=0.9999, keep_ratio=1.0)
    runner.train()
    hist = _hook(runner, DatasetCurationHook).history[0]
    assert hist['duplicates'] == 39 and hist['kept'] == 13       # one copy + 12 distinct
    active = runner.train_dataloader.sampler.active_indices
    assert Counter(GROUP[active].tolist())[0] == 1
    runner = _runner(tmp_path / 'cand', 'cand', candidate_ratio=0.5, keep_ratio=0.25)
    runner.train()
    assert all(h['candidates'] == 26 and h['kept'] == 13
               for h in _hook(runner, DatasetCurationHook).history)


def test_hook_needs_curation_sampler(tmp_path) -> None:
    runner = Runner(
        model=dict(type='_CurationToyModel'), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=dict(type='_PlantedDataset'), batch_size=8,
                              sampler=dict(type='DefaultSampler', seed=0),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='DatasetCurationHook')], default_scope='geo3d',
        log_level='WARNING', experiment_name=f'{tmp_path.name}-nosampler')
    with pytest.raises(TypeError, match="sampler = dict\\(type='CurationSampler'\\)"):
        runner.train()


@pytest.mark.parametrize('kw, match', [
    (dict(keep_ratio=0.0), 'keep_ratio'), (dict(candidate_ratio=1.5), 'candidate_ratio'),
    (dict(interval=0), 'interval'), (dict(eta=2.0), 'eta'), (dict(num_clusters=[4, 0]),
                                                            'num_clusters'),
    (dict(dedup_threshold=-1.0), 'dedup_threshold'),
    (dict(feature_fn='no_such_function'), 'feature_fn'),
])
def test_hook_bad_arguments(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        DatasetCurationHook(**kw)


def test_should_curate_schedule() -> None:
    hook = DatasetCurationHook(warmup_epochs=3, interval=2)
    assert [e for e in range(1, 11) if hook.should_curate(e, 10)] == [3, 5, 7, 9]
    assert DatasetCurationHook(skip_last_epoch=False).should_curate(4, 4)


def test_distributed_gather_path(monkeypatch) -> None:
    """Two ranks: each embeds its half of the candidates; rank 0 selects from the gathered
    embeddings and every rank ends with the same active set as a single process."""
    model = _CurationToyModel()
    logger = MMLogger.get_instance('test_curation_dist')

    def fake_runner():
        sampler = CurationSampler(_PlantedDataset(), seed=0, num_replicas=1, rank=0)
        loader = DataLoader(_PlantedDataset(), batch_size=8, sampler=sampler)
        return SimpleNamespace(model=model, train_dataloader=loader, logger=logger, epoch=0,
                               max_epochs=3,
                               message_hub=MessageHub.get_instance('test_curation_dist'))

    single = fake_runner()
    DatasetCurationHook(keep_ratio=16 / 52, num_clusters=5, seed=0).after_train_epoch(single)
    want = single.train_dataloader.sampler.active_indices

    helper = DatasetCurationHook(keep_ratio=16 / 52, num_clusters=5, seed=0)
    cand = np.arange(52)
    other = (cand[1::2], helper.embed(fake_runner(), _PlantedDataset(), cand[1::2]))
    monkeypatch.setattr(curation_mod, 'get_dist_info', lambda: (0, 2))
    monkeypatch.setattr(curation_mod, 'all_gather_object', lambda obj: [obj, other])
    monkeypatch.setattr(curation_mod, 'broadcast_object_list', lambda objs, src=0: None)
    rank0 = fake_runner()
    DatasetCurationHook(keep_ratio=16 / 52, num_clusters=5, seed=0).after_train_epoch(rank0)
    assert rank0.train_dataloader.sampler.active_indices.tolist() == want.tolist()

    # rank 1 embeds only its half and takes rank 0's broadcast selection
    embedded = []

    def record_embed(self, runner, dataset, indices):
        embedded.append(indices.tolist())
        return np.zeros((len(indices), 8), np.float32)

    def receive(objs, src=0):
        objs[0] = (want, {'candidates': 52, 'duplicates': 0, 'clusters': 5})

    monkeypatch.setattr(curation_mod, 'get_dist_info', lambda: (1, 2))
    monkeypatch.setattr(DatasetCurationHook, 'embed', record_embed)
    monkeypatch.setattr(curation_mod, 'broadcast_object_list', receive)
    rank1 = fake_runner()
    DatasetCurationHook(keep_ratio=16 / 52, num_clusters=5, seed=0).after_train_epoch(rank1)
    assert embedded == [cand[1::2].tolist()]
    assert rank1.train_dataloader.sampler.active_indices.tolist() == want.tolist()
