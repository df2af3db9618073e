"""2D SSL algorithms: training reduces the loss on a fixed batch, gradients reach the backbone,
MoCo's EMA key encoder and queue follow their formulas, SLA uses labels, iSogCLR indices."""
from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F

import geo3d.models.ssl2d.algorithms as algorithms
from geo3d.models.ssl2d.algorithms.scatsimclr import rotate_each
from geo3d.models.ssl2d.losses import (MixedBarlowTwinsLoss, MoCHiLoss, NTXentLoss,
                                       aggregate_joint_logits, rotate_views)
from geo3d.registry import MODELS

B, V, S = 8, 2, 8
BACKBONE = dict(type='SmallViT', img_size=S, patch_size=4, embed_dim=16, depth=1, num_heads=2)
NECK = dict(type='ProjectionMLP', hidden_channels=16, out_channels=8)
HAS_DIFFSORT = importlib.util.find_spec('diffsort') is not None

CONFIGS = {
    'SimCLR': dict(type='SimCLR', neck=NECK),
    'BarlowTwins': dict(type='BarlowTwins', neck=NECK,
                        loss=dict(type='BarlowTwinsLoss', lambda_offdiag=0.1)),
    'MixedBarlowTwins': dict(type='MixedBarlowTwins', neck=NECK),
    'MoCoV2': dict(type='MoCoV2', neck=NECK, queue_size=32, momentum=0.9),
    'MoCoV2sym': dict(type='MoCoV2', neck=NECK, queue_size=32, momentum=0.9, symmetric=True),
    'MoCHi': dict(type='MoCHi', neck=NECK, queue_size=32, momentum=0.9,
                  loss=dict(type='MoCHiLoss', num_hard=8, num_mix=8, num_query_mix=2)),
    'DCL': dict(type='DCL', neck=NECK),
    'DCLW': dict(type='DCL', neck=NECK, loss=dict(type='DCLWLoss')),
    'ISogCLR': dict(type='ISogCLR', neck=NECK, loss=dict(type='ISogCLRLoss', num_samples=20)),
    'CACR': dict(type='CACR', neck=NECK),
    'AMCL': dict(type='AMCL', neck=dict(type='MultiHeadProjection', num_heads=2,
                                        hidden_channels=16, out_channels=8)),
    'SLA': dict(type='SLA', num_classes=3),
    'SLASD': dict(type='SLA', num_classes=3, self_distill=True),
}
CONFIGS['ScatSimCLR'] = dict(type='ScatSimCLR', neck=NECK, pretext_hidden=(16, 8))
if HAS_DIFFSORT:
    CONFIGS['GroCo'] = dict(type='GroCo', neck=NECK, loss=dict(type='GroCoLoss', topk_neg=3))
NUM_VIEWS = {'CACR': 3, 'GroCo': 3}


def build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return MODELS.build(dict(CONFIGS[name], backbone=BACKBONE))


def batch(views: int = V, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {'inputs': torch.rand(B, views, 3, S, S, generator=g) * 2 - 1,
            'data_samples': {'gt_label': torch.arange(B) % 3,
                             'sample_idx': torch.tensor([3, 17, 0, 9, 12, 5, 1, 19])}}


def total_loss(out: dict) -> torch.Tensor:
    """What mmengine optimises: the sum of every entry whose key holds 'loss'."""
    return sum(v for k, v in out.items() if 'loss' in k)


def fixed_batch_loss(model, data: dict, queue: torch.Tensor | None = None) -> float:
    """Training-mode loss of ``data`` on a copy (no state of ``model`` changes); MoCo's queue is
    reset to ``queue`` and the mixing draws are seeded, so only the weights differ."""
    m = copy.deepcopy(model).train()
    if queue is not None:
        m.queue.copy_(queue)
    torch.manual_seed(123)
    return float(total_loss(m(**data, mode='loss')).detach())


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_training_reduces_loss_and_reaches_backbone(name: str) -> None:
    model = build(name)
    data = batch(NUM_VIEWS.get(name, V))
    queue = model.queue.clone() if hasattr(model, 'queue') else None
    before = fixed_batch_loss(model, data, queue)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for step in range(6):
        opt.zero_grad()
        loss = total_loss(model(**data, mode='loss'))
        assert torch.isfinite(loss)
        loss.backward()
        if step == 0:
            for pname, p in model.backbone.named_parameters():
                assert p.grad is not None and p.grad.abs().max() > 0, f'{name}: {pname}'
        opt.step()
    after = fixed_batch_loss(model, data, queue)
    assert after < before, f'{name}: loss {before:.5f} -> {after:.5f}'


def test_registered_and_feature_mode() -> None:
    for name in algorithms.__all__:
        if name not in ('BaseSSL2D', 'TwoViewSSL', 'MultiViewSSL'):
            assert MODELS.get(name) is getattr(algorithms, name)
    model = build('SimCLR').eval()
    x = batch()['inputs']
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), model.backbone(x[:, 0]))
        assert model(x[:, 1], mode='predict').shape == (B, 16)
    with pytest.raises(ValueError, match='unknown mode'):
        model(x, mode='features')
    with pytest.raises(ValueError, match=r'inputs must be views \(B, V, 3, H, W\)'):
        model(x[:, 0], mode='loss')
    with pytest.raises(ValueError, match='needs at least 2 views'):
        model(x[:, :1], mode='loss')
    with pytest.raises(ValueError, match='needs exactly 2 views'):
        model(batch(3)['inputs'], mode='loss')


def test_moco_key_encoder_ema_and_queue_follow_the_formulas() -> None:
    model = build('MoCoV2').train()
    model.queue_ptr.fill_(28)  # 8 keys into a 32-row queue from row 28: wraps to rows 0..3
    m = model.momentum
    q_params = {k: v.detach().clone() for k, v in model.backbone.named_parameters()}
    k_params = {k: v.detach().clone() for k, v in model.momentum_backbone.named_parameters()}
    old_queue = model.queue.clone()
    data = batch(seed=1)
    model(**data, mode='loss')
    for k, v in model.momentum_backbone.named_parameters():
        torch.testing.assert_close(v, m * k_params[k] + (1 - m) * q_params[k], rtol=0, atol=1e-7)
    with torch.no_grad():
        keys = F.normalize(model.momentum_neck(model.momentum_backbone(data['inputs'][:, 1])),
                           dim=1)
    rows = [28, 29, 30, 31, 0, 1, 2, 3]
    torch.testing.assert_close(model.queue[rows], keys)
    untouched = [r for r in range(32) if r not in rows]
    assert torch.equal(model.queue[untouched], old_queue[untouched])
    assert int(model.queue_ptr) == 4 and int(model.num_steps) == 1
    # evaluation changes nothing
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    model(**data, mode='loss')
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_moco_loss_is_infonce_against_the_queue_before_enqueue() -> None:
    model = build('MoCoV2').train()
    data = batch(seed=2)
    queue = model.queue.clone()
    loss = model(**data, mode='loss')['loss']
    with torch.no_grad():
        q = model.neck(model.backbone(data['inputs'][:, 0]))
        k = model.keys(data['inputs'][:, 1])
    # explicit InfoNCE: positive logit first, then the (old) queue
    logits = torch.cat([(F.normalize(q, dim=1) * k).sum(1, keepdim=True),
                        F.normalize(q, dim=1) @ queue.T], 1) / 0.2
    torch.testing.assert_close(loss.detach(), F.cross_entropy(logits, torch.zeros(B).long()))


def test_symmetric_moco_averages_both_query_directions() -> None:
    model = build('MoCoV2sym').train()
    data = batch(seed=3)
    queue = model.queue.clone()
    loss = model(**data, mode='loss')['loss']
    x = data['inputs']
    with torch.no_grad():
        z = model.embed(x)  # the queries of both views (one pass, shared BN statistics)
        k0, k1 = model.keys(x[:, 0]), model.keys(x[:, 1])

    def infonce(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = F.normalize(q, dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / 0.2
        return F.cross_entropy(logits, torch.zeros(B).long())

    torch.testing.assert_close(loss.detach(), 0.5 * (infonce(z[:, 0], k1) + infonce(z[:, 1], k0)))
    torch.testing.assert_close(model.queue[:B], k1)  # view 1's keys are enqueued


def test_mochi_mixes_only_after_the_warm_up() -> None:
    model = MODELS.build(dict(CONFIGS['MoCHi'], backbone=BACKBONE, mix_start_iter=2)).train()
    calls: list[str] = []
    model.loss_module.register_forward_hook(lambda *a: calls.append('mix') and None)
    model.plain_loss.register_forward_hook(lambda *a: calls.append('plain') and None)
    for _ in range(3):
        model(**batch(), mode='loss')
    assert calls == ['plain', 'plain', 'mix']
    assert isinstance(model.loss_module, MoCHiLoss) and model.loss_module.num_mix == 8
    assert model.plain_loss.num_mix == 0 and model.plain_loss.num_query_mix == 0
    with pytest.raises(ValueError, match='smaller than the loss'):
        MODELS.build(dict(CONFIGS['MoCHi'], backbone=BACKBONE, queue_size=4))


def test_mixed_barlow_twins_embeds_the_mixed_batch(monkeypatch) -> None:
    model = build('MixedBarlowTwins')
    perm = torch.tensor([3, 0, 1, 2, 7, 4, 5, 6])
    monkeypatch.setattr(model, 'draw_mix', lambda b, d: (0.3, perm))
    x = batch()['inputs']
    got = model(x, mode='loss')['loss']
    z_a, z_b = model.project(x[:, 0]), model.project(x[:, 1])
    # the mixed pass on its own (separate BN statistics), then the loss
    z_m = model.project(0.3 * x[:, 0] + 0.7 * x[:, 1][perm])
    z_ab = model.embed(x)  # both views in one pass, as the algorithm does
    expected = MixedBarlowTwinsLoss()(z_ab[:, 0], z_ab[:, 1], z_m, 0.3, perm)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(z_ab[:, 0], z_a)  # BN statistics over both views, not one


def test_isogclr_updates_the_state_of_its_indices_only() -> None:
    model = build('ISogCLR').train()
    tau0 = model.loss_module.tau.clone()
    data = batch()
    model(**data, mode='loss')
    idx = data['data_samples']['sample_idx']
    seen = model.loss_module.seen
    assert seen[idx].all() and int(seen.sum()) == B
    others = torch.ones(20, dtype=torch.bool)
    others[idx] = False
    assert torch.equal(model.loss_module.tau[others], tau0[others])
    assert not torch.equal(model.loss_module.tau[idx], tau0[idx])
    with pytest.raises(ValueError, match=r"needs data_samples\['sample_idx'\]"):
        model(data['inputs'], {'gt_label': data['data_samples']['gt_label']}, mode='loss')
    with pytest.raises(ValueError, match='num_samples'):
        MODELS.build(dict(type='ISogCLR', backbone=BACKBONE, loss=dict(type='ISogCLRLoss')))


def test_sla_uses_labels_and_aggregates_rotations() -> None:
    model = build('SLA')
    data = batch()
    x, labels = data['inputs'], data['data_samples']['gt_label']
    loss = model(x, data['data_samples'], mode='loss')['loss']
    other = model(x, {'gt_label': (labels + 1) % 3}, mode='loss')['loss']
    assert not torch.allclose(loss, other)
    # explicit: joint CE over the 4 rotations of view 0, label (y, j) = 4 y + j
    logits = model.joint_head(model.backbone(rotate_views(x[:, 0])))
    target = torch.tensor([4 * int(y) + j for y in labels for j in range(4)])
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))
    with torch.no_grad():
        scores = model(x, mode='predict')
        expected = torch.zeros(B, 3)
        for j in range(4):
            rotated = torch.rot90(x[:, 0], j, dims=(2, 3))
            expected += model.joint_head(model.backbone(rotated))[:, j::4] / 4
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scores, aggregate_joint_logits(logits, 4).detach(), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"needs data_samples\['gt_label'\].*supervised"):
        model(x, {'sample_idx': data['data_samples']['sample_idx']}, mode='loss')
    sd = build('SLASD')
    assert sd.single_head is not None and torch.isfinite(sd(x, data['data_samples'],
                                                            mode='loss')['loss'])


def test_amcl_heads_must_match_the_loss() -> None:
    model = build('AMCL')
    assert model.loss_module.num_heads == 2 and model.loss_module.dim == 8
    model(**batch(), mode='loss')['loss'].backward()
    assert all(p.grad is not None for p in model.loss_module.temperature.parameters())
    with pytest.raises(ValueError, match='the neck gives 2 heads'):
        MODELS.build(dict(CONFIGS['AMCL'], backbone=BACKBONE,
                          loss=dict(type='AMCLLoss', dim=8, num_heads=3)))


def test_scatsimclr_adds_the_rotation_pretext(monkeypatch) -> None:
    model = build('ScatSimCLR').eval()  # eval: no dropout in the pretext head
    k = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    monkeypatch.setattr(model, 'draw_rotations', lambda b, d: k)
    x = batch()['inputs']
    out = model(x, mode='loss')
    rotated = torch.stack([torch.rot90(x[b, 0], int(k[b]), dims=(1, 2)) for b in range(B)])
    assert torch.equal(rotate_each(x[:, 0], k), rotated)
    logits = model.pretext_head(model.backbone(rotated))
    torch.testing.assert_close(out['loss_rotation'], 0.3 * F.cross_entropy(logits, k))
    z = model.embed(x)
    torch.testing.assert_close(out['loss_contrastive'], NTXentLoss(0.5)(z[:, 0], z[:, 1]))
