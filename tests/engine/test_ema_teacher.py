"""EMATeacherHook: EMA update rule, cosine momentum schedule, teacher in checkpoints."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from geo3d.engine.hooks.ema_teacher import EMATeacherHook, cosine_momentum
from geo3d.registry import HOOKS


class StudentTeacher(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)


def fake_runner(model: nn.Module, it: int, max_iters: int) -> SimpleNamespace:
    return SimpleNamespace(model=model, iter=it, max_iters=max_iters,
                           message_hub=MessageHub.get_instance('test_ema_teacher'))


def test_update_rule_and_buffers() -> None:
    torch.manual_seed(0)
    model = StudentTeacher()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    model.student(torch.randn(8, 3))  # changes the BN running stats
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    hook = HOOKS.build(dict(type='EMATeacherHook', momentum_start=0.9, momentum_end=0.9))
    runner = fake_runner(model, 0, 10)
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    for name, p in model.teacher.named_parameters():
        s = dict(model.student.named_parameters())[name]
        want = before[name] + 0.1 * (s.detach() - before[name])
        assert torch.allclose(p, want, atol=1e-7), name
        assert not p.requires_grad
    for name, b in model.teacher.named_buffers():
        assert torch.equal(b, dict(model.student.named_buffers())[name])


def test_cosine_schedule() -> None:
    assert cosine_momentum(0, 100) == pytest.approx(0.996)
    assert cosine_momentum(50, 100) == pytest.approx(0.998)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(25, 100) == pytest.approx(1.0 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    hook = EMATeacherHook()
    model = StudentTeacher()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.teacher.named_parameters()}
    hook.after_train_iter(fake_runner(model, 9, 10), 9)  # the last iteration: m = 1
    for name, p in model.teacher.named_parameters():
        assert torch.equal(p, before[name])


def test_teacher_survives_save_load(tmp_path) -> None:
    model = StudentTeacher()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    EMATeacherHook(0.5, 0.5).after_train_iter(fake_runner(model, 0, 4), 0)
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    fresh = StudentTeacher()
    fresh.load_state_dict(torch.load(path, weights_only=True)['state_dict'])
    for (k, a), (_, b) in zip(model.teacher.state_dict().items(),
                              fresh.teacher.state_dict().items()):
        assert torch.equal(a, b), k
    assert any(k.startswith('teacher.') for k in model.state_dict())
