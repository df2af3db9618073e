"""EMA teacher update for teacher-student self-supervised pretraining (e.g. MSM).

After every training iteration ``teacher = m * teacher + (1 - m) * student`` for parameters,
and the student's buffers (BatchNorm running statistics) are copied to the teacher. The momentum
follows the cosine schedule of BYOL (Grill et al., 2020) used by MSM (arXiv 2504.06719,
Table 14: 0.996 -> 1.0): ``m(k) = m_end - (m_end - m_start) * (cos(pi * k / K) + 1) / 2`` after
the ``k``-th of ``K = runner.max_iters`` iterations (k = 1..K, so the last update uses m_end).
The teacher is a submodule of the model, so checkpoints hold it and ``--resume`` restores it;
the schedule depends only on ``runner.iter``, so the hook itself has no state.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from geo3d.registry import HOOKS


def cosine_momentum(k: int, total: int, start: float = 0.996, end: float = 1.0) -> float:
    """Momentum after iteration ``k`` of ``total`` (``k = 0`` -> start, ``k = total`` -> end)."""
    if total <= 0:
        return end
    p = min(max(k / total, 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * p) + 1.0) / 2.0


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In place: teacher params ``m * t + (1 - m) * s``; buffers copied from the student."""
    t_params = dict(teacher.named_parameters())
    s_params = dict(student.named_parameters())
    if t_params.keys() != s_params.keys():
        raise ValueError('teacher and student have different parameters')
    for name, tp in t_params.items():
        tp.mul_(momentum).add_(s_params[name].detach().to(tp.dtype), alpha=1.0 - momentum)
    s_bufs = dict(student.named_buffers())
    for name, tb in teacher.named_buffers():
        tb.copy_(s_bufs[name])


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Update ``model.<teacher>`` from ``model.<student>`` after each training iteration.

    Args:
        momentum_start: momentum at the start of training.
        momentum_end: momentum at the end (``runner.max_iters``).
        student: attribute name of the student module on the (unwrapped) model.
        teacher: attribute name of the teacher module.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, momentum_start: float = 0.996, momentum_end: float = 1.0,
                 student: str = 'student', teacher: str = 'teacher') -> None:
        if not 0.0 <= momentum_start <= 1.0 or not 0.0 <= momentum_end <= 1.0:
            raise ValueError('momenta must be in [0, 1]')
        self.momentum_start = momentum_start
        self.momentum_end = momentum_end
        self.student = student
        self.teacher = teacher

    def momentum(self, k: int, total: int) -> float:
        return cosine_momentum(k, total, self.momentum_start, self.momentum_end)

    def _modules(self, runner: Any) -> tuple[nn.Module, nn.Module]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return getattr(model, self.student), getattr(model, self.teacher)

    def before_train(self, runner: Any) -> None:
        self._modules(runner)  # fail early if the model has no student/teacher

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        student, teacher = self._modules(runner)
        # runner.iter counts the iterations finished before this one
        m = self.momentum(runner.iter + 1, runner.max_iters)
        ema_update(teacher, student, m)
        runner.message_hub.update_scalar('train/ema_momentum', m)
