"""Tests for geo3d.utils.io atomic writers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from geo3d.utils.io import (atomic_dir, atomic_save_npy, atomic_write_json, atomic_write_text,
                            remove_stale_tmp, tmp_name, write_text_if_changed)


def _hidden(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith('.'))


def test_atomic_save_npy_roundtrip(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.int16).reshape(4, 3)
    p = tmp_path / 'a.npy'
    atomic_save_npy(p, a)
    b = np.load(p)
    assert b.dtype == np.int16 and np.array_equal(a, b)
    atomic_save_npy(p, a * 2)  # overwrite in place
    assert np.array_equal(np.load(p), a * 2)
    assert _hidden(tmp_path) == []


def test_atomic_text_and_json(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / 't.txt', 'a\nb\n')
    assert (tmp_path / 't.txt').read_bytes() == b'a\nb\n'
    atomic_write_json(tmp_path / 'j.json', {'b': 1, 'a': [1, 2]})
    assert json.loads((tmp_path / 'j.json').read_text()) == {'b': 1, 'a': [1, 2]}
    assert _hidden(tmp_path) == []


def test_write_text_if_changed(tmp_path: Path) -> None:
    p = tmp_path / 'lines.txt'
    assert write_text_if_changed(p, 'a\nb\n') is True  # new file
    os.utime(p, ns=(1, 1))
    assert write_text_if_changed(p, 'a\nb\n') is False  # same text: untouched
    assert p.stat().st_mtime_ns == 1
    assert write_text_if_changed(p, 'a\n') is True and p.read_text() == 'a\n'
    p.write_bytes(b'\xff\xfe')  # not UTF-8: rewritten, not an error
    assert write_text_if_changed(p, 'a\n') is True and p.read_bytes() == b'a\n'
    assert _hidden(tmp_path) == []


def test_atomic_write_failure_keeps_old(tmp_path: Path) -> None:
    p = tmp_path / 'j.json'
    atomic_write_json(p, {'x': 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {'x': object()})
    assert json.loads(p.read_text()) == {'x': 1}
    assert _hidden(tmp_path) == []


def test_atomic_dir_success_and_failure(tmp_path: Path) -> None:
    final = tmp_path / 'scene'
    with atomic_dir(final) as d:
        assert d == tmp_name(final) and d.is_dir()
        (d / 'f.txt').write_text('x')
        assert not final.exists()
    assert (final / 'f.txt').read_text() == 'x'

    final2 = tmp_path / 'broken'
    with pytest.raises(RuntimeError):
        with atomic_dir(final2) as d:
            (d / 'f.txt').write_text('x')
            raise RuntimeError('boom')
    assert not final2.exists()
    assert _hidden(tmp_path) == []


def test_atomic_dir_exists_and_overwrite(tmp_path: Path) -> None:
    final = tmp_path / 'scene'
    final.mkdir()
    (final / 'old.txt').write_text('old')
    with pytest.raises(FileExistsError):
        with atomic_dir(final):
            pass
    with atomic_dir(final, overwrite=True) as d:
        (d / 'new.txt').write_text('new')
    assert sorted(p.name for p in final.iterdir()) == ['new.txt']
    assert _hidden(tmp_path) == []


def test_atomic_dir_replaces_own_stale_tmp(tmp_path: Path) -> None:
    final = tmp_path / 'scene'
    stale = tmp_name(final)
    stale.mkdir()
    (stale / 'junk').write_text('junk')
    with atomic_dir(final) as d:
        assert not (d / 'junk').exists()
        (d / 'ok').write_text('ok')
    assert sorted(p.name for p in final.iterdir()) == ['ok']


def test_remove_stale_tmp(tmp_path: Path) -> None:
    dead_pid = 2 ** 22 + 12345  # above the default pid_max on Linux: never alive
    (tmp_path / f'.scene0000_00.tmp-{dead_pid}').mkdir()
    (tmp_path / f'.scene0001_00.old-{dead_pid}').mkdir()
    (tmp_path / f'.meta.json.tmp-{dead_pid}').write_text('{')
    live = tmp_path / f'.scene0002_00.tmp-{os.getpid()}'
    live.mkdir()
    (tmp_path / 'scene0003_00').mkdir()
    removed = remove_stale_tmp(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, 'scene0003_00']
    assert remove_stale_tmp(tmp_path / 'missing') == []
