"""Run the validation loop once before training starts, so the starting metric is logged.

mmengine's train loops validate only after an epoch (``val_begin >= 1``) or iteration; a
pre-training curve such as "held-out PSNR during Gaussian2Scene stage 2" needs the value of the
initial (or ``load_from``-loaded) model too. The values are logged at epoch / iteration 0 like
any validation (``val/...`` scalars of the message hub, the log line, ``vis_data``).
"""
from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook

from geo3d.registry import HOOKS

__all__ = ['ValidateBeforeTrainHook']


@HOOKS.register_module()
class ValidateBeforeTrainHook(Hook):
    """Call ``runner.val_loop.run()`` in ``before_train``.

    Args:
        on_resume: also validate when training resumes from a checkpoint (the runner's iter is
            then > 0); False (default) validates only a run that starts from iteration 0.
    """

    # after the other hooks' before_train (e.g. EMA set-up), before any training step
    priority = 'LOWEST'

    def __init__(self, on_resume: bool = False) -> None:
        self.on_resume = bool(on_resume)

    def before_train(self, runner: Any) -> None:
        if runner.val_loop is None or (runner.iter > 0 and not self.on_resume):
            return
        runner.val_loop.run()
