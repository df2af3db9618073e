"""--resume and load_from through tools/train.py on torch >= 2.6 (weights_only default)."""
import json
import os.path as osp

import pytest
import torch

from tests.helpers.toy_runner import SimulatedCrash  # noqa: F401  (registers the toy modules)
from tests.helpers.tools import TOY_CONFIG_HEAD, load_tool


def _write_config(path):
    path.write_text(TOY_CONFIG_HEAD + """
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', milestones=[1, 2], gamma=0.5, by_epoch=True)]
custom_hooks = [dict(type='RecordStateHook')]
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=123)
""")
    return str(path)


def _final_weights(work_dir, epoch):
    ck = torch.load(osp.join(work_dir, f'epoch_{epoch}.pth'), weights_only=False)
    return ck['state_dict']


def _start(work_dir):
    with open(osp.join(work_dir, 'start_state.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    train = load_tool('train')
    tmp = tmp_path_factory.mktemp('resume')
    cfg = _write_config(tmp / 'toy.py')
    straight = str(tmp / 'straight')
    assert train.main([cfg, '--work-dir', straight]) == 0
    split = str(tmp / 'split')
    crash_cfg = tmp / 'toy_crash.py'
    crash_cfg.write_text("_base_ = ['./toy.py']\n"
                         "custom_hooks = [dict(type='RecordStateHook'), "
                         "dict(type='CrashAfterEpochHook', epoch=2)]\n")
    with pytest.raises(SimulatedCrash):
        train.main([str(crash_cfg), '--work-dir', split])
    assert not osp.exists(osp.join(split, 'epoch_3.pth'))
    first_start = _start(split)
    assert train.main([cfg, '--work-dir', split, '--resume']) == 0
    return dict(train=train, cfg=cfg, straight=straight, split=split, tmp=tmp,
                first_start=first_start)


def test_torch_default_is_weights_only(runs):
    """The situation geo3d must handle: plain torch.load refuses mmengine's checkpoints."""
    with pytest.raises(Exception):
        torch.load(osp.join(runs['split'], 'epoch_2.pth'))


def test_resume_continues_at_right_epoch_with_state(runs):
    first, resumed = runs['first_start'], _start(runs['split'])
    assert first['epoch'] == 0 and first['iter'] == 0
    assert resumed['epoch'] == 2 and resumed['iter'] == 2 * 4   # 32 samples / batch 8
    assert resumed['scheduler_last_step'] == [2]
    assert resumed['lr'] == pytest.approx(0.1 * 0.5 * 0.5)
    assert resumed['momentum_norm'] > 0        # optimizer state came back
    assert resumed['lr_history_len'] == 8      # message hub history came back


def test_resumed_run_equals_uninterrupted_run(runs):
    a = _final_weights(runs['straight'], 3)
    b = _final_weights(runs['split'], 3)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # and it is not trivially equal to the epoch-2 weights
    c = _final_weights(runs['split'], 2)
    assert any(not torch.allclose(a[k], c[k]) for k in a)


def test_load_from_full_training_checkpoint(runs):
    ckpt = osp.join(runs['split'], 'epoch_2.pth')
    wd = str(runs['tmp'] / 'finetune')
    assert runs['train'].main([runs['cfg'], '--work-dir', wd, '--cfg-options',
                               f'load_from={ckpt}', 'train_cfg.max_epochs=1']) == 0
    start = _start(wd)
    expected = sum(float(v.sum()) for v in _final_weights(runs['split'], 2).values())
    assert start['epoch'] == 0 and start['iter'] == 0
    assert start['weight_sum'] == pytest.approx(expected, rel=1e-6)
    assert start['momentum_norm'] == 0          # load_from loads weights only, not the optimizer
