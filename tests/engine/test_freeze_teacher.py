"""FreezeTeacherHook: freezes once at the epoch / iteration threshold, also after a resume."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from geo3d.engine.hooks import FreezeTeacherHook


class Model:
    def __init__(self) -> None:
        self.teacher_frozen = False
        self.calls = 0

    def freeze_teacher(self) -> None:
        self.calls += 1
        self.teacher_frozen = True


def runner(epoch: int = 0, it: int = 0) -> SimpleNamespace:
    return SimpleNamespace(model=Model(), epoch=epoch, iter=it,
                           logger=logging.getLogger('test_freeze_teacher'))


def test_freezes_at_the_epoch_once():
    hook = FreezeTeacherHook(epoch=2)
    r = runner()
    for epoch in range(4):
        r.epoch = epoch
        hook.before_train_epoch(r)
        hook.before_train_iter(r, 0)
        assert r.model.teacher_frozen == (epoch >= 2)
    assert r.model.calls == 1


def test_freezes_at_the_iteration_and_on_resume():
    hook = FreezeTeacherHook(iter=5)
    r = runner(it=4)
    hook.before_train_iter(r, 4)
    assert not r.model.teacher_frozen
    r.iter = 5
    hook.before_train_iter(r, 5)
    assert r.model.teacher_frozen
    resumed = runner(epoch=1, it=40)  # a fresh model restored past the threshold
    hook.before_train(resumed)
    assert resumed.model.teacher_frozen


def test_clear_errors():
    with pytest.raises(ValueError, match='give epoch= or iter='):
        FreezeTeacherHook()
    with pytest.raises(ValueError, match='epoch must be an int >= 0'):
        FreezeTeacherHook(epoch=-1)
    r = runner(epoch=3)
    r.model = object()
    with pytest.raises(TypeError, match='has no freeze_teacher'):
        FreezeTeacherHook(epoch=1).before_train(r)
