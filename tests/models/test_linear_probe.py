"""LinearProbeSegmentor: frozen backbone, loss/predict paths; backbone weights from checkpoints."""
import pytest
import torch
import torch.nn.functional as F

from geo3d.models.probes import LinearProbeSegmentor, load_backbone_weights
from geo3d.models.segmentors.point_segmentor import PointSegmentor
from geo3d.structures import PointBatch

TINY = dict(type='SpUNet', in_channels=6, base_channels=8, channels=(8, 16, 16, 8),
            layers=(1, 1, 1, 1), stem_kernel_size=3)


def _batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i, n in enumerate((300, 200)):
        coord = torch.rand(n, 3, generator=gen) * 1.5
        samples.append({'coord': coord, 'feat': torch.randn(n, 6, generator=gen),
                        'segment': torch.randint(-1, 3, (n,), generator=gen), 'name': f's{i}'})
    pb, _ = PointBatch.collate(samples).grid_sample(0.1, mode='first')
    pb.extras['origin_segment'] = torch.cat([s['segment'] for s in samples])
    return pb


def _save_segmentor(path, prefix_fmt='{}'):
    torch.manual_seed(1)
    seg = PointSegmentor(backbone=TINY, num_classes=3)
    sd = {prefix_fmt.format(k): v for k, v in seg.state_dict().items()}
    torch.save({'meta': {'epoch': 3}, 'state_dict': sd}, path)
    return seg


def test_load_backbone_weights_segmentor_and_msm(tmp_path):
    from geo3d.registry import MODELS
    seg = _save_segmentor(tmp_path / 'seg.pth')
    bb = MODELS.build(TINY)
    assert load_backbone_weights(bb, str(tmp_path / 'seg.pth')) == 'backbone.'
    for k, v in seg.backbone.state_dict().items():
        torch.testing.assert_close(bb.state_dict()[k], v)
    # a fake MSM checkpoint: student and teacher backbones; the student is taken
    sd = {f'student.{k}': v for k, v in seg.state_dict().items()}
    sd.update({f'teacher.{k}': torch.zeros_like(v) for k, v in seg.state_dict().items()})
    torch.save({'state_dict': sd}, tmp_path / 'msm.pth')
    bb2 = MODELS.build(TINY)
    assert load_backbone_weights(bb2, str(tmp_path / 'msm.pth')) == 'student.backbone.'
    torch.testing.assert_close(bb2.stem.conv.weight, seg.backbone.stem.conv.weight)
    # geo3d's MSM model: the student is the backbone itself (keys 'student.stem...')
    sd = {f'student.{k}': v for k, v in seg.backbone.state_dict().items()}
    sd.update({f'teacher.{k}': torch.zeros_like(v) for k, v in seg.backbone.state_dict().items()})
    sd['projectors.0.weight'] = torch.zeros(2, 2)
    torch.save({'state_dict': sd}, tmp_path / 'msm_geo3d.pth')
    bb3 = MODELS.build(TINY)
    assert load_backbone_weights(bb3, str(tmp_path / 'msm_geo3d.pth')) == 'student.'
    torch.testing.assert_close(bb3.stem.conv.weight, seg.backbone.stem.conv.weight)
    # wrong architecture: a clear error naming the file and the keys
    other = MODELS.build(dict(TINY, channels=(8, 16, 16, 16, 16, 8), layers=(1,) * 6))
    with pytest.raises(KeyError, match='msm.pth.*missing keys.*dec.2'):
        load_backbone_weights(other, str(tmp_path / 'msm.pth'))


def test_probe_frozen_backbone_loss_and_predict(tmp_path):
    seg = _save_segmentor(tmp_path / 'seg.pth')
    probe = LinearProbeSegmentor(backbone=TINY, num_classes=3,
                                 backbone_checkpoint=str(tmp_path / 'seg.pth'))
    assert probe.classifier.in_features == 8 + 16 + 16   # strides 1, 2, 4 (finest first)
    before = {k: v.clone() for k, v in probe.backbone.state_dict().items()}
    probe.train()
    assert not probe.backbone.training and probe.classifier.training
    pb = _batch()
    loss = probe(pb, mode='loss')['loss_seg']
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in probe.backbone.parameters())
    assert probe.classifier.weight.grad.abs().sum() > 0
    for k, v in probe.backbone.state_dict().items():     # BN running stats untouched
        torch.testing.assert_close(v, before[k])
    # loss = CE on the voxel rows over frozen features from the loaded backbone
    seg.eval()
    feats = probe.extract_feat(pb)
    levels = seg.backbone(pb)
    torch.testing.assert_close(feats[:, :8], probe.extractor.sampler([levels[-1]], pb.grid_coord,
                                                                      pb.batch), atol=1e-5,
                               rtol=1e-5)
    ref = F.cross_entropy(probe.classifier(feats), pb['segment'], ignore_index=-1)
    torch.testing.assert_close(loss, ref)
    out = probe(pb, mode='predict')
    assert [d['name'] for d in out] == ['s0', 's1']
    assert [d['pred'].shape[0] for d in out] == [300, 200]
    voxel_pred = probe(pb, mode='tensor').argmax(1)
    torch.testing.assert_close(torch.cat([d['pred'] for d in out]), voxel_pred[pb['inverse']])
    torch.testing.assert_close(torch.cat([d['gt'] for d in out]), pb['origin_segment'])


def test_feat_norm_option():
    probe = LinearProbeSegmentor(backbone=TINY, num_classes=3, feat_norm='bn')
    assert isinstance(probe.norm, torch.nn.BatchNorm1d) and not probe.norm.affine
    with pytest.raises(ValueError):
        LinearProbeSegmentor(backbone=TINY, num_classes=3, feat_norm='ln')


# ------------------------------------------------------------------ tools (tiny fixture)
@pytest.fixture(scope='module')
def tiny_probe_setup(tmp_path_factory):
    """A converted 1-train/1-val fixture, a segmentor checkpoint and a tiny probe config."""
    import os.path as osp

    from geo3d.converters.scannet import convert
    from geo3d.datasets.demo import make_demo_scannet
    from tests.helpers.tools import ROOT

    tmp = tmp_path_factory.mktemp('probe_tools')
    raw, data = tmp / 'raw', tmp / 'data'
    make_demo_scannet(str(raw), num_train=1, num_val=1, num_test=0, seed=5,
                      points_per_scene=3000)
    convert(str(raw), str(data), workers=1, progress=False, verbose=False)
    seg = _save_segmentor(tmp / 'seg.pth')
    cfg = tmp / 'probe.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/linear_probe_scannet_demo.py')!r}]
model = dict(backbone=dict(_delete_=True, **{TINY!r}))
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data)!r}, loop=1))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root={str(data)!r}))
test_dataloader = val_dataloader
max_epochs = 2
train_cfg = dict(max_epochs=2, val_interval=1)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=2, begin=0, end=2, by_epoch=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best=None))
""")
    return tmp, cfg, seg


def test_linear_probe_tool_end_to_end(tiny_probe_setup, capsys):
    """Train 2 epochs: the mIoU line is printed, the backbone in the saved probe checkpoints
    equals the source checkpoint's (BN statistics included), the classifier moved."""
    import math
    import re

    from tests.helpers.tools import load_tool

    tmp, cfg, seg = tiny_probe_setup
    work = tmp / 'work'
    tool = load_tool('linear_probe')
    assert tool.main([str(cfg), '--checkpoint', str(tmp / 'seg.pth'),
                      '--work-dir', str(work)]) == 0
    printed = capsys.readouterr().out
    found = re.findall(r'linear probe mIoU \(scannet20\): ([0-9.naN]+)', printed)
    assert found and 0.0 <= float(found[-1]) <= 1.0 and not math.isnan(float(found[-1]))
    sd1 = torch.load(work / 'epoch_1.pth', weights_only=False)['state_dict']
    sd2 = torch.load(work / 'epoch_2.pth', weights_only=False)['state_dict']
    for k, v in seg.backbone.state_dict().items():
        torch.testing.assert_close(sd2[f'extractor.backbone.{k}'], v, rtol=0, atol=0)
    assert not torch.equal(sd1['classifier.weight'], sd2['classifier.weight'])


def test_knn_probe_tool_end_to_end(tiny_probe_setup, capsys):
    import re

    from tests.helpers.tools import load_tool

    tmp, cfg, _ = tiny_probe_setup
    tool = load_tool('knn_probe')
    assert tool.main([str(cfg), '--checkpoint', str(tmp / 'seg.pth'), '--k', '5',
                      '--bank-points', '300', '--device', 'cpu']) == 0
    printed = capsys.readouterr().out
    miou = float(re.findall(r'knn probe mIoU \(scannet20, k=5\): ([0-9.]+)', printed)[-1])
    assert 0.0 <= miou <= 1.0 and 'bank: 300 voxels of 1 training scenes' in printed
    assert 'wall' in printed            # the per-class table


def test_linear_probe_tool_cached_writes_result_json(tiny_probe_setup, capsys):
    """--cached: features extracted once, the probe fitted offline; the JSON's mIoU is the
    printed one and holds a per-class IoU for every class; the backbone file is untouched."""
    import json
    import re

    from tests.helpers.tools import load_tool

    tmp, cfg, _ = tiny_probe_setup
    before = (tmp / 'seg.pth').read_bytes()
    out = tmp / 'cached.json'
    tool = load_tool('linear_probe')
    assert tool.main([str(cfg), '--checkpoint', str(tmp / 'seg.pth'), '--cached',
                      '--result-json', str(out), '--work-dir', str(tmp / 'work_cached'),
                      '--cfg-options', 'cached_probe.epochs=3',
                      'cached_probe.points_per_scene=500']) == 0
    printed = capsys.readouterr().out
    miou = float(re.findall(r'linear probe mIoU \(scannet20, cached features\): ([0-9.]+)',
                            printed)[-1])
    r = json.loads(out.read_text())
    assert r['mode'] == 'cached' and abs(r['mIoU'] - miou) < 1e-4
    assert len(r['per_class_iou']) == 20 and r['settings']['epochs'] == 3
    assert 'cache: 500 voxels of 1 training scenes' in printed
    assert (tmp / 'seg.pth').read_bytes() == before
    # bad settings are named
    assert tool.main([str(cfg), '--checkpoint', 'none', '--cached',
                      '--cfg-options', 'cached_probe.epoch=3']) == 2
    assert "unknown cached_probe keys ['epoch']" in capsys.readouterr().err
