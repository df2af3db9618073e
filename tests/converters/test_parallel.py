"""The converters' shared runner: every item reported once (in this process and in a pool), an
item that raises is a per-item failure, initializer, progress bar and log lines, and pools
started once bars were shown still fork (the tqdm-monitor-forces-spawn regression)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from geo3d.converters.parallel import log_line, progress_bar, run_parallel

REPO = Path(__file__).resolve().parents[2]

_STATE: list[str] = []  # set by the parent (or the initializer); a spawned worker starts empty


def _square(task: int) -> tuple[str, Any]:
    if task == 3:
        raise ValueError('no threes')
    if task == 5:
        return 'failed', (f'item{task}', f'/raw/{task}', 'bad input')
    return 'ok', (task, task * task, os.getpid())


def _init(tag: str) -> None:
    _STATE[:] = [tag]


def _state(task: int) -> tuple[str, Any]:
    return 'ok', (task, list(_STATE))


def _collect(tasks: list[int], workers: int, **kw: Any) -> tuple[dict, list, set]:
    ok: dict[int, int] = {}
    failed: list[Any] = []
    pids: set[int] = set()

    def handle(status: str, payload: Any, bar: Any) -> None:
        if status == 'ok':
            i, sq, pid = payload
            assert i not in ok  # each item exactly once
            ok[i] = sq
            pids.add(pid)
        else:
            failed.append(payload)

    run_parallel(_square, tasks, workers, 'test', 'item', kw.pop('progress', False), handle, **kw)
    return ok, failed, pids


@pytest.mark.parametrize('workers', [1, 2])
def test_results_and_per_item_errors(workers: int) -> None:
    tasks = list(range(8))
    ok, failed, pids = _collect(tasks, workers)
    assert ok == {i: i * i for i in tasks if i not in (3, 5)}
    # the raising item is a failure of its own (default payload: first field as the name), the
    # item that failed by status keeps its payload; neither stops the others
    assert sorted(failed) == [('3', '', 'unexpected ValueError: no threes'),
                              ('item5', '/raw/5', 'bad input')]
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids


def test_custom_error_payload_and_no_tasks() -> None:
    _, failed, _ = _collect([3, 4], 2, on_error=lambda task, msg: (f'frame {task}', msg))
    assert failed == [('frame 3', 'unexpected ValueError: no threes')]
    calls: list[Any] = []
    run_parallel(_square, [], 2, 'test', 'item', True, lambda *a: calls.append(a))
    assert calls == []


@pytest.mark.parametrize('workers', [1, 2])
def test_initializer_runs_where_the_tasks_run(workers: int) -> None:
    _STATE[:] = []
    seen: dict[int, list[str]] = {}
    run_parallel(_state, [0, 1, 2], workers, 'test', 'item', False,
                 lambda s, p, bar: seen.__setitem__(*p), initializer=_init,
                 initargs=(f'w{workers}',))
    assert seen == {i: [f'w{workers}'] for i in range(3)}
    _STATE[:] = []


def test_progress_bar_and_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    bars: list[Any] = []

    def handle(status: str, payload: Any, bar: Any) -> None:
        bars.append(bar)
        if status != 'ok':
            log_line('FAILED {}: {}: {}'.format(*payload), bar)

    run_parallel(_square, list(range(6)), 2, 'unit bar', 'item', True, handle)
    log_line('summary line')
    err = capsys.readouterr().err
    assert 'unit bar' in err and '6/6' in err
    assert 'FAILED 3: : unexpected ValueError: no threes' in err
    assert 'FAILED item5: /raw/5: bad input' in err and err.rstrip().endswith('summary line')
    assert len(bars) == 6 and all(b is bars[0] and b is not None for b in bars)


def test_progress_bar_starts_no_thread() -> None:
    before = threading.active_count()
    with progress_bar(3, 'no thread', 'item') as bar:
        bar.update(3)
        assert threading.active_count() == before and bar.miniters == 1


_FORK_CHECK = """
import json, threading
from geo3d.converters.parallel import run_parallel
from tests.converters import test_parallel as t
t._STATE[:] = ['parent']
seen = []
for phase in range(2):  # two phases, as a conversion runs them: the second pool once bars ran
    got = {}
    run_parallel(t._state, list(range(4)), 2, 'phase', 'item', True,
                 lambda s, p, bar: got.__setitem__(*p))
    seen.append(sorted(got.items()))
print(json.dumps({'seen': seen, 'threads': threading.active_count()}))
"""


@pytest.mark.skipif('fork' not in mp.get_all_start_methods(), reason='no fork here')
def test_pools_fork_although_bars_are_shown() -> None:
    """A tqdm bar starts a monitor thread that lives until the process exits, and
    :func:`pool_context` spawns when another thread exists: workers then re-import everything
    (nuScenes fixture: 34 s instead of 0.8 s). The runner's bars start no thread and its pool
    comes before its bar, so both phases fork and the workers inherit the parent's state
    (spawned workers would see ``[]``). In a fresh interpreter: this one may run threads."""
    proc = subprocess.run([sys.executable, '-c', _FORK_CHECK], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res['seen'] == [[[i, ['parent']] for i in range(4)]] * 2
    assert res['threads'] == 1
    assert 'phase: 100%' in proc.stderr
