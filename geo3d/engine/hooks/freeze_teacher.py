"""Freeze a model's jointly trained teacher from a given epoch or iteration (ManyDepth).

ManyDepth (Watson et al., CVPR 2021) trains its single-frame teacher and pose network together
with the multi-frame network until ``--freeze_teacher_epoch`` (KITTI 15) or
``--freeze_teacher_step``, then rebuilds the optimiser over the multi-frame networks only and puts
the teacher's BatchNorm in eval mode. In mmengine the optimiser is not rebuilt; instead the
model's ``freeze_teacher()`` turns ``requires_grad`` off and drops the ``.grad`` of the teacher's
parameters: PyTorch's optimisers skip parameters whose ``grad`` is None, so neither the gradient
step nor Adam's momentum nor weight decay touch them again (their optimiser state stays in the
checkpoint, unused). The model keeps the teacher in eval mode from then on.

The hook has no state: it compares ``runner.epoch`` / ``runner.iter`` with its threshold before
every epoch and iteration (and when training starts, so ``--resume`` past the threshold freezes
again). Under DDP, wrap with ``find_unused_parameters=True`` (the frozen parameters stop
receiving gradients).
"""
from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from geo3d.registry import HOOKS

__all__ = ['FreezeTeacherHook']


@HOOKS.register_module()
class FreezeTeacherHook(Hook):
    """Call ``model.freeze_teacher()`` once ``runner.epoch >= epoch`` or ``runner.iter >= iter``.

    Args:
        epoch: first (0-based) epoch trained with the frozen teacher (ManyDepth KITTI: 15).
        iter: first (0-based) iteration trained with the frozen teacher (ManyDepth's
            ``--freeze_teacher_step``).
        At least one must be given; the earlier threshold wins.

    The model must have ``freeze_teacher()`` and a ``teacher_frozen`` attribute (e.g.
    :class:`~geo3d.models.depth.ManyDepth`).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, epoch: int | None = None, iter: int | None = None) -> None:
        if epoch is None and iter is None:
            raise ValueError('FreezeTeacherHook: give epoch= or iter= (when to freeze)')
        for name, v in (('epoch', epoch), ('iter', iter)):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f'FreezeTeacherHook: {name} must be an int >= 0, got {v!r}')
        self.epoch = epoch
        self.iter = iter

    def _maybe_freeze(self, runner: Any) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'freeze_teacher'):
            raise TypeError(f'FreezeTeacherHook: {type(model).__name__} has no freeze_teacher()')
        if getattr(model, 'teacher_frozen', False):
            return
        due = (self.epoch is not None and runner.epoch >= self.epoch) or \
            (self.iter is not None and runner.iter >= self.iter)
        if due:
            model.freeze_teacher()
            runner.logger.info(f'FreezeTeacherHook: teacher frozen at epoch {runner.epoch}, '
                               f'iteration {runner.iter}')

    def before_train(self, runner: Any) -> None:
        self._maybe_freeze(runner)

    def before_train_epoch(self, runner: Any) -> None:
        self._maybe_freeze(runner)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        self._maybe_freeze(runner)
