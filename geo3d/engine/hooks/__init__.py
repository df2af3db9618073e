"""Runner hooks; importing registers them in geo3d's HOOKS registry."""
from .curation import DatasetCurationHook
from .ema_teacher import EMATeacherHook, cosine_momentum, ema_update
from .freeze_teacher import FreezeTeacherHook

__all__ = ['EMATeacherHook', 'cosine_momentum', 'ema_update', 'DatasetCurationHook',
           'FreezeTeacherHook']
from .val_before_train import ValidateBeforeTrainHook  # noqa: E402,F401
