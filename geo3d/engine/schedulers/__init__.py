"""Parameter schedulers; importing registers them in geo3d's PARAM_SCHEDULERS registry."""
from .infinite_lr import InfiniteLR, InfiniteParamScheduler, infinite_schedule_value

__all__ = ['InfiniteLR', 'InfiniteParamScheduler', 'infinite_schedule_value']
