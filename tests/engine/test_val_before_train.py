"""ValidateBeforeTrainHook: the validation loop runs once before training (not on resume)."""
from __future__ import annotations

from types import SimpleNamespace

from geo3d.engine.hooks import ValidateBeforeTrainHook
from geo3d.registry import HOOKS


class CountingLoop:
    def __init__(self) -> None:
        self.runs = 0

    def run(self) -> dict:
        self.runs += 1
        return {}


def test_runs_val_loop_at_the_start_only() -> None:
    hook = HOOKS.build(dict(type='ValidateBeforeTrainHook'))
    assert isinstance(hook, ValidateBeforeTrainHook)
    loop = CountingLoop()
    hook.before_train(SimpleNamespace(val_loop=loop, iter=0))
    assert loop.runs == 1
    hook.before_train(SimpleNamespace(val_loop=loop, iter=120))       # resumed: skipped
    assert loop.runs == 1
    ValidateBeforeTrainHook(on_resume=True).before_train(SimpleNamespace(val_loop=loop, iter=120))
    assert loop.runs == 2
    hook.before_train(SimpleNamespace(val_loop=None, iter=0))         # no val loop: nothing
