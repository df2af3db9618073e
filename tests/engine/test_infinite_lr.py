"""InfiniteLR: closed-form values per phase, epoch->iteration conversion, resume, continual phases,
and use inside an mmengine runner with SGD and AdamW."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from geo3d.engine.schedulers.infinite_lr import InfiniteLR, infinite_schedule_value
from geo3d.registry import DATASETS, HOOKS, MODELS, PARAM_SCHEDULERS


def _optimizer(lrs=(1.0,), kind: str = 'sgd') -> torch.optim.Optimizer:
    groups = [{'params': [nn.Parameter(torch.zeros(2))], 'lr': lr} for lr in lrs]
    if kind == 'adamw':
        return torch.optim.AdamW(groups)
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _run(scheduler, optimizer, steps: int) -> list[list[float]]:
    """The value used at steps 0..steps-1 (the value set before each optimizer step)."""
    out = []
    for _ in range(steps):
        out.append([g['lr'] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def _expected(eta_max=1.0, const=0.2, low=0.02, warmup=4, cooldown=6, constant_until=25,
              anneal=5) -> np.ndarray:
    """The same schedule written out phase by phase with numpy (an independent re-statement)."""
    warm = np.linspace(0.0, eta_max, warmup + 1)[:-1]
    cool = const + (eta_max - const) * 0.5 * (1 + np.cos(np.pi * np.arange(cooldown) / cooldown))
    flat = np.full(constant_until - warmup - cooldown, const)
    ann = np.geomspace(const, low, anneal + 1)[:-1]
    return np.concatenate([warm, cool, flat, ann])


def test_phases_against_closed_form() -> None:
    opt = _optimizer((1.0, 0.5))
    sched = InfiniteLR(opt, warmup=4, cooldown=6, eta_const_ratio=0.2, anneal=5,
                       eta_min_ratio=0.02, end=30, by_epoch=False)
    got = np.array(_run(sched, opt, 30))
    want = _expected()
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[:, 1], 0.5 * want, rtol=1e-12, atol=1e-15)  # per-group base
    # the boundaries by hand
    assert got[0, 0] == 0.0 and got[2, 0] == pytest.approx(0.5)
    assert got[4, 0] == pytest.approx(1.0)                        # end of warm-up = peak
    assert got[7, 0] == pytest.approx(0.6)                        # cos(pi/2): halfway
    assert got[10, 0] == pytest.approx(0.2) and got[24, 0] == pytest.approx(0.2)
    assert got[25, 0] == pytest.approx(0.2)                       # annealing starts at A
    assert got[29, 0] == pytest.approx(0.2 * 0.1 ** 0.8)
    assert [sched.phase(t) for t in (0, 3, 4, 9, 10, 24, 25, 29)] == [
        'warmup', 'warmup', 'cooldown', 'cooldown', 'constant', 'constant', 'anneal', 'anneal']
    # after end the value stays where the window left it
    opt.step()
    sched.step()
    assert opt.param_groups[0]['lr'] == pytest.approx(got[29, 0])


def test_no_annealing_is_constant_forever() -> None:
    opt = _optimizer()
    sched = InfiniteLR(opt, warmup=2, cooldown=2, eta_const=0.05, by_epoch=False)
    got = np.array(_run(sched, opt, 200))[:, 0]
    np.testing.assert_allclose(got[4:], 0.05)
    assert got.max() == pytest.approx(1.0)


@pytest.mark.parametrize('kind', ['linear', 'inv_sqrt'])
def test_other_cooldowns(kind: str) -> None:
    tau = 10.0
    for p in (0.0, 0.25, 0.5, 0.75):
        v = infinite_schedule_value(int(8 * p) + 2, 1.0, 0.2, warmup=2, cooldown=8,
                                    cooldown_type=kind, timescale=tau)
        if kind == 'linear':
            want = 1.0 - 0.8 * p
        else:
            want = 1.0 - 0.8 * (1 - 1 / math.sqrt(1 + tau * p)) / (1 - 1 / math.sqrt(1 + tau))
        assert v == pytest.approx(want)
    # continuous into the constant phase, monotone decreasing during the cool-down
    vals = [infinite_schedule_value(t, 1.0, 0.2, warmup=2, cooldown=8, cooldown_type=kind)
            for t in range(2, 11)]
    assert vals[-1] == pytest.approx(0.2)
    assert all(a > b for a, b in zip(vals, vals[1:-1]))


def test_warmup_start_factor_and_absolute_targets() -> None:
    opt = _optimizer((0.4,))
    sched = InfiniteLR(opt, warmup=4, cooldown=0, eta_const=0.1, anneal=2, eta_min=0.001,
                       warmup_start_factor=0.25, end=10, by_epoch=False)
    got = np.array(_run(sched, opt, 10))[:, 0]
    np.testing.assert_allclose(got[:4], [0.1, 0.175, 0.25, 0.325])
    np.testing.assert_allclose(got[4:8], 0.1)                     # no cool-down: a step down
    np.testing.assert_allclose(got[8:], [0.1, 0.01])              # 0.1 * (0.01) ** (k / 2)


def test_convert_to_iter_based_matches_iteration_config() -> None:
    opt_a, opt_b = _optimizer(), _optimizer()
    a = PARAM_SCHEDULERS.build(
        dict(type='InfiniteLR', warmup=1, cooldown=2, anneal=1, eta_const_ratio=0.3,
             eta_min_ratio=0.03, end=6, by_epoch=True, convert_to_iter_based=True),
        default_args=dict(optimizer=opt_a, epoch_length=5))
    b = InfiniteLR(opt_b, warmup=5, cooldown=10, anneal=5, eta_const_ratio=0.3,
                   eta_min_ratio=0.03, end=30, by_epoch=False)
    assert not a.by_epoch and a.warmup == 5 and a.cooldown == 10 and a.anneal == 5
    np.testing.assert_allclose(_run(a, opt_a, 30), _run(b, opt_b, 30))


def test_by_epoch_counts_epochs() -> None:
    opt = _optimizer()
    sched = PARAM_SCHEDULERS.build(dict(type='InfiniteLR', warmup=2, cooldown=2,
                                        eta_const_ratio=0.5), default_args=dict(optimizer=opt))
    assert sched.by_epoch
    np.testing.assert_allclose(np.array(_run(sched, opt, 6))[:, 0],
                               [0.0, 0.5, 1.0, 0.75, 0.5, 0.5])


def test_resume_mid_phase_gives_same_sequence(tmp_path) -> None:
    kw = dict(warmup=3, cooldown=8, eta_const_ratio=0.1, anneal=4, eta_min_ratio=0.01, end=20,
              by_epoch=False)
    opt = _optimizer((1.0, 0.3))
    sched = InfiniteLR(opt, **kw)
    straight = _run(sched, opt, 20)

    opt1 = _optimizer((1.0, 0.3))
    s1 = InfiniteLR(opt1, **kw)
    first = _run(s1, opt1, 7)                                     # stop inside the cool-down
    assert s1.phase() == 'cooldown'
    path = tmp_path / 'sched.pth'
    torch.save({'opt': opt1.state_dict(), 'sched': s1.state_dict()}, path)
    ck = torch.load(path, weights_only=True)                     # plain types only
    opt2 = _optimizer((1.0, 0.3))
    s2 = InfiniteLR(opt2, **kw)                   # a fresh run sits at step 0 ...
    assert opt2.param_groups[0]['lr'] == 0.0
    s2.load_state_dict(ck['sched'])               # ... until the states are loaded
    opt2.load_state_dict(ck['opt'])
    rest = _run(s2, opt2, 13)
    np.testing.assert_allclose(first + rest, straight, rtol=1e-12)


def test_continual_phase_never_rewarms() -> None:
    kw = dict(eta_const_ratio=0.1, by_epoch=False)
    opt = _optimizer()
    phase1 = _run(InfiniteLR(opt, warmup=3, cooldown=5, **kw), opt, 20)
    opt2 = _optimizer()                       # the next task: a new run from the checkpoint
    phase2 = np.array(_run(InfiniteLR(opt2, warmup=3, cooldown=5, continual=True, **kw),
                           opt2, 20))[:, 0]
    assert phase1[-1][0] == pytest.approx(0.1)
    np.testing.assert_allclose(phase2, 0.1)   # starts at and stays at eta_const
    # with annealing before the phase's checkpoint
    opt3 = _optimizer()
    phase3 = np.array(_run(InfiniteLR(opt3, continual=True, anneal=4, eta_min_ratio=0.001,
                                      end=10, **kw), opt3, 10))[:, 0]
    np.testing.assert_allclose(phase3[:6], 0.1)
    assert (np.diff(phase3[6:]) < 0).all() and phase3.max() <= 0.1 + 1e-15


@pytest.mark.parametrize('kwargs, match', [
    (dict(warmup=-1), 'warmup must be an integer >= 0'),
    (dict(cooldown=1.5), 'cooldown must be an integer'),
    (dict(cooldown_type='step'), 'cooldown_type must be one of'),
    (dict(eta_const=0.1, eta_const_ratio=0.1), 'not both'),
    (dict(anneal=3), 'needs a finite end'),
    (dict(anneal=3, end=10, eta_min=0.0), 'positive eta_const and eta_min'),
    (dict(warmup=5, cooldown=5, anneal=3, end=10), r'exceed the schedule length'),
    (dict(warmup_start_factor=1.5), 'warmup_start_factor'),
])
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        InfiniteLR(_optimizer(), **kwargs)


# ---------------------------------------------------------------- inside an mmengine runner
@MODELS.register_module(force=True)
class _InfLRToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        x = self.net(inputs)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(x, labels)}
        return x


@DATASETS.register_module(force=True)
class _InfLRToyDataset(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        x = torch.randn(3, generator=torch.Generator().manual_seed(i))
        return {'inputs': x, 'labels': int(x[0] > 0)}


@HOOKS.register_module(force=True)
class _RecordLRHook(Hook):
    """Records the learning rate each training iteration uses."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.lrs.append(runner.optim_wrapper.optimizer.param_groups[0]['lr'])


class _Crash(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class _CrashAfterEpoch(Hook):
    priority = 'LOWEST'   # after the checkpoint is written

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            raise _Crash


def _runner(work_dir, optimizer: dict, crash: int | None = None, resume: bool = False,
            name: str = 'run'):
    hooks = [dict(type='_RecordLRHook')] + ([dict(type='_CrashAfterEpoch', epoch=crash)]
                                            if crash else [])
    return Runner(
        model=dict(type='_InfLRToyModel'), work_dir=str(work_dir),
        train_dataloader=dict(dataset=dict(type='_InfLRToyDataset'), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
                              collate_fn=dict(type='default_collate'), num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=4),
        optim_wrapper=dict(optimizer=optimizer),
        # 4 iterations per epoch: warm-up 1 epoch, cool-down 1, constant 1, anneal 1
        param_scheduler=dict(type='InfiniteLR', warmup=1, cooldown=1, anneal=1,
                             eta_const_ratio=0.25, eta_min_ratio=0.025, by_epoch=True,
                             convert_to_iter_based=True),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks, default_scope='geo3d', randomness=dict(seed=0),
        resume=resume, log_level='WARNING', experiment_name=f'{work_dir.parent.name}-{name}')


def _recorded(runner) -> list[float]:
    return next(h for h in runner.hooks if isinstance(h, _RecordLRHook)).lrs


@pytest.mark.parametrize('optimizer', [dict(type='SGD', lr=0.2, momentum=0.9),
                                       dict(type='AdamW', lr=0.2, weight_decay=0.01)])
def test_in_runner_with_resume(tmp_path, optimizer) -> None:
    runner = _runner(tmp_path / 'straight', optimizer)
    runner.train()
    lrs = np.array(_recorded(runner))
    want = 0.2 * _expected(const=0.25, low=0.025, warmup=4, cooldown=4, constant_until=12,
                           anneal=4)
    np.testing.assert_allclose(lrs, want, rtol=1e-12, atol=1e-15)

    split = tmp_path / 'split'
    crashed = _runner(split, optimizer, crash=2, name='crash')
    with pytest.raises(_Crash):
        crashed.train()
    resumed = _runner(split, optimizer, resume=True, name='resume')   # from epoch_2.pth
    resumed.train()
    sched = resumed.param_schedulers[0]
    assert sched._global_step == 16 and sched.last_step == 15   # the window is [0, 16)
    np.testing.assert_allclose(_recorded(crashed) + _recorded(resumed), lrs, rtol=1e-12)
    w_a = runner.model.state_dict()
    w_b = resumed.model.state_dict()
    for k in w_a:
        torch.testing.assert_close(w_a[k], w_b[k])
