"""The dataset converters' shared item runner: a function over a list of tasks, in this process
or in a worker pool, with a tqdm bar on stderr and one failure per item instead of a crash.

Every converter task function takes one picklable task and returns ``(status, payload)``
(``'ok'`` or ``'failed'`` by convention, a converter may add its own statuses); the converter's
``handle(status, payload, bar)`` receives each result as it arrives (completion order with more
than one worker, so handlers place results by an index or key carried in the payload).

Start method: :func:`pool_context` only forks a process that has no other Python thread
(fork-with-threads can deadlock a child); otherwise it spawns, and every spawned worker
re-imports everything. A plain tqdm bar starts tqdm's monitor thread, which lives until the
process exits (tqdm 4.67), so one bar shown before a pool, or by an earlier phase of the same
conversion, turned every later pool into a spawn pool (nuScenes fixture, 2 workers with bars:
34 s instead of 0.8 s). Hence :func:`progress_bar` makes bars that start no thread, and the pool
is created before its bar. A thread the caller started (e.g. its own tqdm bar) still means
spawn: correct, only slower (``tqdm.tqdm.monitor_interval = 0`` before its first bar avoids it).
"""
from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import sys
import threading
from typing import Any, Callable, Sequence

__all__ = ['run_parallel', 'pool_context', 'progress_bar', 'log_line', 'default_error_payload',
           'TaskFn', 'Handler', 'ErrorPayload']

TaskFn = Callable[[Any], tuple[str, Any]]
Handler = Callable[[str, Any, Any], None]
ErrorPayload = Callable[[Any, str], Any]


def pool_context() -> mp.context.BaseContext:
    """``fork`` where available and this process has no other Python thread (fastest: workers
    inherit the imported modules); ``spawn`` otherwise."""
    if 'fork' in mp.get_all_start_methods() and threading.active_count() == 1:
        return mp.get_context('fork')
    return mp.get_context('spawn')


@functools.lru_cache(maxsize=None)
def _bar_class() -> type:
    from tqdm import tqdm

    class ThreadlessTqdm(tqdm):  # type: ignore[misc]
        """tqdm without the monitor thread (which only refreshes bars whose ``miniters`` grew
        past 1: these bars keep ``miniters=1``)."""
        monitor_interval = 0

    return ThreadlessTqdm


def progress_bar(total: int, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr that starts no thread (see the module docstring)."""
    return _bar_class()(total=total, desc=desc, unit=unit, file=sys.stderr, miniters=1,
                        dynamic_ncols=True)


def log_line(msg: str, bar: Any = None) -> None:
    """Print ``msg`` on stderr, above the tqdm ``bar`` when one is shown."""
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr, flush=True)


def default_error_payload(task: Any, message: str) -> tuple[str, str, str]:
    """``(item, file, reason)`` of a task that raised: the converters' failure-tuple shape, with
    the task's first field (or the task) as the item name and no file."""
    item = task[0] if isinstance(task, tuple) and task else task
    return str(item), '', message


class _Guarded:
    """``fn`` for one indexed task: ``(index, task) -> (index, status, payload)``; an exception
    becomes ``(index, None, 'unexpected <Type>: <message>')`` (module level: picklable)."""

    def __init__(self, fn: TaskFn) -> None:
        self.fn = fn

    def __call__(self, item: tuple[int, Any]) -> tuple[int, str | None, Any]:
        index, task = item
        try:
            status, payload = self.fn(task)
        except Exception as e:  # one bad item must not take the others down
            return index, None, f'unexpected {type(e).__name__}: {e}'
        return index, status, payload


def run_parallel(fn: TaskFn, tasks: Sequence[Any], workers: int, desc: str, unit: str,
                 progress: bool, handle: Handler,
                 on_error: ErrorPayload = default_error_payload,
                 initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
    """Run ``fn`` over ``tasks`` and call ``handle(status, payload, bar)`` for each result.

    Args:
        fn: module-level (picklable) task function returning ``(status, payload)``.
        tasks: picklable tasks.
        workers: processes; with 1 (or at most one task) everything runs in this process.
        desc, unit: the tqdm bar's label and unit.
        progress: show the bar (on stderr; none when there are no tasks).
        handle: called in this process, in completion order; ``bar`` is the tqdm bar or None
            (pass it to :func:`log_line` to print above the bar).
        on_error: ``on_error(task, 'unexpected <Type>: <message>')`` is the payload passed as
            ``handle('failed', payload, bar)`` for a task whose ``fn`` raised an ``Exception``.
        initializer, initargs: called once in every worker (and once in this process when
            nothing runs in a pool), as :class:`multiprocessing.pool.Pool`'s.
    """
    guarded = _Guarded(fn)
    items = list(enumerate(tasks))
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(items) > 1:
            # the pool before the bar: no thread may exist when it forks (module docstring)
            pool = stack.enter_context(pool_context().Pool(
                min(workers, len(items)), initializer=initializer, initargs=initargs))
            results = pool.imap_unordered(guarded, items, chunksize=1)
        else:
            if initializer is not None:
                initializer(*initargs)
            results = map(guarded, items)
        bar = None
        if progress and items:
            bar = stack.enter_context(progress_bar(len(items), desc, unit))
        for index, status, payload in results:
            if status is None:
                status, payload = 'failed', on_error(tasks[index], payload)
            handle(status, payload, bar)
            if bar is not None:
                bar.update(1)
