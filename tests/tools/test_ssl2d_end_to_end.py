"""2D SSL end to end on the digits: tools/train.py (SimCLR, iSogCLR) then the image probe through
tools/linear_probe.py; every digits config builds and takes a loss step."""
from __future__ import annotations

import glob
import json
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate

from geo3d.registry import DATASETS, MODELS
from tests.helpers.tools import ROOT, load_tool

TINY_RUN = """
_base_ = [{base!r}]
train_dataloader = dict(batch_size=8, dataset=dict(max_samples=16))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, begin=0, end=1, by_epoch=True)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""

TINY_PROBE = """
_base_ = [{base!r}]
model = dict(weight_decay=[1e-4], knn_k=1)
train_dataloader = dict(dataset=dict(max_samples=20))
val_dataloader = dict(dataset=dict(split='train', max_samples=20))  # the training images
test_dataloader = dict(dataset=dict(max_samples=30))
"""


def _config(tmp_path, name: str, template: str, base: str) -> str:
    path = tmp_path / f'{name}.py'
    path.write_text(template.format(base=osp.join(ROOT, 'configs', base)))
    return str(path)


def test_simclr_train_then_probe(tmp_path, capsys) -> None:
    work = tmp_path / 'simclr'
    cfg = _config(tmp_path, 'simclr_tiny', TINY_RUN, 'simclr_digits.py')
    assert load_tool('train').main([cfg, '--work-dir', str(work)]) == 0
    ckpt = work / 'epoch_1.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('backbone.') for k in state) and any(k.startswith('neck.') for k in
                                                                 state)
    logged = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r'loss: ([0-9.]+)', logged)]
    assert len(losses) == 2 and all(0 < v < 10 for v in losses)  # 2 iterations of NT-Xent

    probe_cfg = _config(tmp_path, 'probe_tiny', TINY_PROBE, 'linear_probe_digits.py')
    probe = load_tool('linear_probe')
    for name, arg in (('pretrained', str(ckpt)), ('random', 'none')):
        out_dir = tmp_path / f'probe_{name}'
        assert probe.main([probe_cfg, '--checkpoint', arg, '--work-dir', str(out_dir)]) == 0
        printed = capsys.readouterr().out
        r = json.loads((out_dir / 'image_probe.json').read_text())
        assert r['checkpoint'] == (arg if name == 'pretrained' else 'none')
        # val = the training images: 1-NN finds the image itself, the probe fits its train set
        assert r['val/knn_top1'] == 1.0 and r['val/linear_top1'] == 1.0
        assert r['num_test'] == 30 and 0.0 <= r['test/linear_top1'] <= 1.0
        assert f'linear probe top-1 (test): {r["test/linear_top1"]:.4f}' in printed
        assert f'knn top-1 (test, k=1): {r["test/knn_top1"]:.4f}' in printed


def test_isogclr_sees_dataset_indices_through_the_runner(tmp_path) -> None:
    work = tmp_path / 'isogclr'
    cfg = _config(tmp_path, 'isogclr_tiny', TINY_RUN, 'isogclr_digits.py')
    assert load_tool('train').main([cfg, '--work-dir', str(work)]) == 0
    state = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)['state_dict']
    seen, tau = state['loss_module.seen'], state['loss_module.tau']
    assert seen.shape == (1197,)
    # one epoch over the first 16 training images: exactly their entries were visited
    assert seen[:16].all() and not seen[16:].any()
    assert (tau[:16] != 0.1).any() and (tau[16:] == 0.1).all()


def test_linear_probe_tool_refuses_a_training_config(capsys) -> None:
    cfg = osp.join(ROOT, 'configs', 'simclr_digits.py')
    assert load_tool('linear_probe').main([cfg, '--checkpoint', 'none']) == 2
    assert 'expected LinearProbeSegmentor or ImageLinearProbe' in capsys.readouterr().err


CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '*_digits.py'))
                 if not osp.basename(p).startswith('linear_probe'))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p)[:-3] for p in CONFIGS])
def test_every_digits_config_takes_a_loss_step(path: str) -> None:
    cfg = Config.fromfile(path)
    if cfg.model.backbone.type == 'ScatNetBackbone':
        pytest.importorskip('kymatio')
    if cfg.model.get('loss', {}).get('type') == 'GroCoLoss':
        pytest.importorskip('diffsort')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.max_samples = 12
    dataset = DATASETS.build(ds_cfg)
    data = model.data_preprocessor(default_collate([dataset[i] for i in range(12)]), True)
    out = model(**data, mode='loss')
    loss = sum(v for k, v in out.items() if 'loss' in k)  # what mmengine optimises
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.backbone.parameters())
