"""The infinite learning-rate schedule for continual pre-training.

Four phases, counted in scheduler steps ``t`` from ``begin`` (epochs, or iterations with
``by_epoch=False`` / ``convert_to_iter_based=True``):

1. warm-up, ``0 <= t < W``: linear from ``warmup_start_factor * eta_max`` to ``eta_max``;
2. cool-down, ``W <= t < W + C``: ``eta_max -> eta_const`` with progress ``p = (t - W) / C``,
   cosine ``eta_const + (eta_max - eta_const) * (1 + cos(pi p)) / 2`` (the paper's "Inf Cos"),
   or linear, or inverse square root
   ``eta_max + (eta_const - eta_max) * g(p) / g(1)``, ``g(p) = 1 / sqrt(1 + tau p) - 1``;
3. constant ``eta_const``; this phase has no end: a stream of tasks keeps training at
   ``eta_const`` and is never re-warmed;
4. optional annealing over the last ``anneal`` steps before ``end`` (run it just before a
   checkpoint is wanted): exponential ``eta_const * (eta_min / eta_const) ** ((t - A) / N)``
   with ``A = end - begin - N``, so the value reaches ``eta_min`` at ``end`` (like mmengine's
   cosine schedule, the last step inside the window, ``t = end - begin - 1``, is one step short).

``eta_max`` is the optimizer's configured learning rate of each parameter group (mmengine's
``initial_lr``). A later phase of a continual run (``continual=True``; e.g. ``load_from`` the
previous phase's checkpoint with a new dataset) skips phases 1-2: it starts at ``eta_const``
and stays there (then anneals if asked), so the learning rate is never re-warmed.

The schedule follows Ibrahim et al., "Simple and Scalable Strategies to Continually Pre-train
Large Language Models" (TMLR 2024, arXiv 2403.08763) and Singh, Janson et al., "Beyond Cosine
Decay: On the effectiveness of Infinite Learning Rate Schedule for Continual Pre-training"
(CoLLAs 2025, arXiv 2503.02844), which uses it for continual self-supervised (MAE) pre-training.

The value is computed in closed form from the step count (not chained multiplicatively), so
``--resume`` continues the phase exactly: the state dict holds the step count and the phase
lengths, nothing else. Do not combine it with another scheduler of the same parameter whose
window overlaps.
"""
from __future__ import annotations

import math
from typing import Literal

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, OptimizerType, _ParamScheduler

from geo3d.registry import PARAM_SCHEDULERS

__all__ = ['infinite_schedule_value', 'InfiniteParamScheduler', 'InfiniteLR', 'COOLDOWN_TYPES']

CooldownType = Literal['cosine', 'linear', 'inv_sqrt']
COOLDOWN_TYPES = ('cosine', 'linear', 'inv_sqrt')


def infinite_schedule_value(t: int, eta_max: float, eta_const: float, warmup: int = 0,
                            cooldown: int = 0, anneal_start: float = math.inf, anneal: int = 0,
                            eta_min: float | None = None, cooldown_type: CooldownType = 'cosine',
                            timescale: float = 10.0, warmup_start_factor: float = 0.0) -> float:
    """The schedule's value at step ``t`` (closed form; see the module docstring).

    Args:
        t: step counted from the schedule's start (``t >= 0``).
        eta_max: peak value (end of warm-up).
        eta_const: value of the constant phase.
        warmup, cooldown: lengths W and C of phases 1 and 2 (0 skips a phase).
        anneal_start: first step A of the annealing phase (``inf`` = never).
        anneal: its length N (> 0 when ``anneal_start`` is finite).
        eta_min: value reached at ``t = A + N``; required when annealing.
        cooldown_type: ``'cosine'``, ``'linear'`` or ``'inv_sqrt'``.
        timescale: tau of the inverse-square-root cool-down.
        warmup_start_factor: warm-up starts at ``warmup_start_factor * eta_max``.
    """
    if t < 0:
        raise ValueError(f'step t must be >= 0, got {t}')
    if t >= anneal_start:
        if eta_min is None or anneal <= 0:
            raise ValueError('annealing needs eta_min and a positive length anneal')
        if eta_const <= 0 or eta_min <= 0:
            raise ValueError(f'exponential annealing needs eta_const > 0 and eta_min > 0, got '
                             f'{eta_const} and {eta_min}')
        p = min((t - anneal_start) / anneal, 1.0)
        return eta_const * (eta_min / eta_const) ** p
    if t < warmup:
        return eta_max * (warmup_start_factor + (1.0 - warmup_start_factor) * t / warmup)
    if t < warmup + cooldown:
        p = (t - warmup) / cooldown
        if cooldown_type == 'cosine':
            return eta_const + (eta_max - eta_const) * (1.0 + math.cos(math.pi * p)) / 2.0
        if cooldown_type == 'linear':
            return eta_max + (eta_const - eta_max) * p
        if cooldown_type == 'inv_sqrt':
            def g(x: float) -> float:
                return 1.0 / math.sqrt(1.0 + timescale * x) - 1.0
            return eta_max + (eta_const - eta_max) * g(p) / g(1.0)
        raise ValueError(f'cooldown_type must be one of {COOLDOWN_TYPES}, got {cooldown_type!r}')
    return eta_const


class InfiniteParamScheduler(_ParamScheduler):
    """Infinite schedule (warm-up, cool-down, constant, optional annealing) of ``param_name``.

    Args:
        optimizer: the (wrapped) optimizer.
        param_name: the scheduled parameter (``'lr'``, ``'momentum'``).
        warmup: warm-up length W in steps (epochs, or iterations when ``by_epoch=False``).
        cooldown: cool-down length C in steps.
        eta_const / eta_const_ratio: value of the constant phase, absolute or as a ratio of each
            group's initial value (exactly one of them; default ``eta_const_ratio=0.1``).
        anneal: length N of the final annealing phase, the last N steps before ``end``
            (0 = no annealing; needs a finite ``end``).
        eta_min / eta_min_ratio: value reached at ``end`` by the annealing (exactly one of them
            when ``anneal > 0``; default ``eta_min_ratio=0.01``).
        cooldown_type: ``'cosine'`` (default), ``'linear'`` or ``'inv_sqrt'``.
        timescale: tau of the inverse-square-root cool-down.
        warmup_start_factor: the warm-up starts at this fraction of the peak (default 0).
        continual: a later phase of a continual run: no warm-up or cool-down, the schedule
            starts at ``eta_const`` (``warmup``/``cooldown`` are ignored).
        begin, end, last_step, by_epoch, verbose: as in mmengine's schedulers. In a runner,
            ``end`` defaults to the train loop's ``max_epochs`` / ``max_iters``.
    """

    def __init__(self, optimizer: OptimizerType, param_name: str, warmup: int = 0,
                 cooldown: int = 0, eta_const: float | None = None,
                 eta_const_ratio: float | None = None, anneal: int = 0,
                 eta_min: float | None = None, eta_min_ratio: float | None = None,
                 cooldown_type: CooldownType = 'cosine', timescale: float = 10.0,
                 warmup_start_factor: float = 0.0, continual: bool = False, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        name = type(self).__name__
        for arg, v in (('warmup', warmup), ('cooldown', cooldown), ('anneal', anneal)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f'{name}: {arg} must be an integer >= 0, got {v!r}')
        if cooldown_type not in COOLDOWN_TYPES:
            raise ValueError(f'{name}: cooldown_type must be one of {COOLDOWN_TYPES}, got '
                             f'{cooldown_type!r}')
        if timescale <= 0:
            raise ValueError(f'{name}: timescale must be > 0, got {timescale}')
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ValueError(f'{name}: warmup_start_factor must be in [0, 1], got '
                             f'{warmup_start_factor}')
        if eta_const is not None and eta_const_ratio is not None:
            raise ValueError(f'{name}: give eta_const or eta_const_ratio, not both')
        if eta_const is None and eta_const_ratio is None:
            eta_const_ratio = 0.1
        if anneal > 0:
            if eta_min is not None and eta_min_ratio is not None:
                raise ValueError(f'{name}: give eta_min or eta_min_ratio, not both')
            if eta_min is None and eta_min_ratio is None:
                eta_min_ratio = 0.01
            if end >= INF:
                raise ValueError(f'{name}: anneal={anneal} needs a finite end (the annealing '
                                 'occupies the last `anneal` steps before `end`)')
        for arg, v in (('eta_const', eta_const), ('eta_const_ratio', eta_const_ratio),
                       ('eta_min', eta_min), ('eta_min_ratio', eta_min_ratio)):
            if v is not None and v < 0:
                raise ValueError(f'{name}: {arg} must be >= 0, got {v}')
        if anneal > 0 and ((eta_min is not None and eta_min <= 0) or
                           (eta_min_ratio is not None and eta_min_ratio <= 0) or
                           (eta_const is not None and eta_const <= 0) or
                           (eta_const_ratio is not None and eta_const_ratio <= 0)):
            raise ValueError(f'{name}: exponential annealing needs positive eta_const and '
                             'eta_min (or ratios)')
        self.continual = bool(continual)
        self.warmup = 0 if self.continual else warmup
        self.cooldown = 0 if self.continual else cooldown
        self.anneal = anneal
        self.eta_const = eta_const
        self.eta_const_ratio = eta_const_ratio
        self.eta_min = eta_min
        self.eta_min_ratio = eta_min_ratio
        self.cooldown_type = cooldown_type
        self.timescale = float(timescale)
        self.warmup_start_factor = float(warmup_start_factor)
        if anneal > 0:
            length = end - begin
            if self.warmup + self.cooldown + anneal > length:
                raise ValueError(f'{name}: warmup ({self.warmup}) + cooldown ({self.cooldown}) '
                                 f'+ anneal ({anneal}) exceed the schedule length end - begin '
                                 f'= {length}')
            self.anneal_start = length - anneal
        else:
            self.anneal_start = None
        super().__init__(optimizer, param_name=param_name, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, warmup: int = 0, cooldown: int = 0, anneal: int = 0,
                              begin: int = 0, end: int = INF, by_epoch: bool = True,
                              epoch_length: int | None = None, **kwargs):
        """An iteration-based instance from an epoch-based config (``convert_to_iter_based``)."""
        if not by_epoch:
            raise ValueError(f'{cls.__name__}: only an epoch-based config (by_epoch=True) can '
                             'be converted to iterations')
        if epoch_length is None or epoch_length <= 0:
            raise ValueError(f'{cls.__name__}: epoch_length must be a positive integer, got '
                             f'{epoch_length}')
        return cls(*args, warmup=warmup * epoch_length, cooldown=cooldown * epoch_length,
                   anneal=anneal * epoch_length, begin=int(begin * epoch_length),
                   end=end if end == INF else int(end * epoch_length), by_epoch=False,
                   **kwargs)

    def phase(self, t: int | None = None) -> str:
        """Name of the phase at step ``t`` (default: the current step)."""
        t = self.last_step if t is None else t
        if self.anneal_start is not None and t >= self.anneal_start:
            return 'anneal'
        if t < self.warmup:
            return 'warmup'
        if t < self.warmup + self.cooldown:
            return 'cooldown'
        return 'constant'

    def _targets(self, base: float) -> tuple[float, float | None]:
        const = self.eta_const if self.eta_const is not None else base * self.eta_const_ratio
        if self.anneal <= 0:
            return const, None
        low = self.eta_min if self.eta_min is not None else base * self.eta_min_ratio
        return const, low

    def value_at(self, t: int, base: float) -> float:
        """The value at step ``t`` for a group whose initial value is ``base``."""
        const, low = self._targets(base)
        return infinite_schedule_value(
            t, eta_max=base, eta_const=const, warmup=self.warmup, cooldown=self.cooldown,
            anneal_start=math.inf if self.anneal_start is None else self.anneal_start,
            anneal=self.anneal, eta_min=low,
            cooldown_type=self.cooldown_type, timescale=self.timescale,
            warmup_start_factor=self.warmup_start_factor)

    def _get_value(self) -> list[float]:
        return [self.value_at(self.last_step, base) for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class InfiniteLR(LRSchedulerMixin, InfiniteParamScheduler):
    """The infinite learning-rate schedule (see :class:`InfiniteParamScheduler`).

    Example (iterations; W = 500, C = 2500, then constant at 10% of the optimizer's lr, and an
    exponential anneal to 1% over the last 1000 iterations of the run)::

        param_scheduler = dict(type='InfiniteLR', by_epoch=False, warmup=500, cooldown=2500,
                               eta_const_ratio=0.1, anneal=1000, eta_min_ratio=0.01)
        # the next task of the stream (load_from the previous checkpoint): no re-warming
        param_scheduler = dict(type='InfiniteLR', by_epoch=False, continual=True,
                               eta_const_ratio=0.1)
    """

