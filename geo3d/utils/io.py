"""Atomic file and directory writes.

Every helper writes into a temporary sibling of the target (same directory, so the final
``os.replace`` is a same-filesystem rename), flushes and fsyncs it, then renames it over the
target. A reader therefore sees either the old file or the complete new one, never a partial
write, and a crash leaves at most a hidden ``.<name>.tmp-<pid>`` sibling behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = [
    'atomic_save_npy', 'atomic_write_bytes', 'atomic_write_text', 'atomic_write_json',
    'write_text_if_changed', 'atomic_dir', 'tmp_name', 'remove_stale_tmp', 'fsync_dir',
]

_TMP_RE = re.compile(r'^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$')


def tmp_name(final: str | os.PathLike[str]) -> Path:
    """Temporary sibling used while ``final`` is being written: ``<dir>/.<name>.tmp-<pid>``."""
    final = Path(final)
    return final.with_name(f'.{final.name}.tmp-{os.getpid()}')


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        fsync_dir(path.parent)


def atomic_save_npy(path: str | os.PathLike[str], array: np.ndarray, fsync: bool = True) -> None:
    """Save ``array`` as a ``.npy`` file atomically; ``path`` is used as given (no suffix added)."""
    buf = io.BytesIO()
    np.save(buf, np.asanyarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue(), fsync=fsync)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = 'utf-8',
                      fsync: bool = True) -> None:
    """Write ``text`` atomically (no newline translation: ``\\n`` stays ``\\n``)."""
    atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def write_text_if_changed(path: str | os.PathLike[str], text: str, encoding: str = 'utf-8',
                          fsync: bool = True) -> bool:
    """Write ``text`` atomically unless ``path`` already holds exactly it (re-runs of a converter
    leave unchanged outputs, and their mtimes, alone). Returns True if the file was written."""
    try:
        if Path(path).read_text(encoding=encoding) == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text, encoding=encoding, fsync=fsync)
    return True


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2,
                      fsync: bool = True) -> None:
    """Serialise ``obj`` as JSON (keys kept in insertion order, trailing newline) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent) + '\n', fsync=fsync)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


@contextlib.contextmanager
def atomic_dir(final_dir: str | os.PathLike[str], overwrite: bool = False,
               fsync: bool = True) -> Iterator[Path]:
    """Build a directory atomically.

    Yields the sibling temp dir ``.<name>.tmp-<pid>`` (created empty; a stale one of the same
    name is removed first). On normal exit the temp dir is fsynced and renamed to ``final_dir``;
    on an exception it is removed and ``final_dir`` is left untouched.

    Args:
        final_dir: the directory to produce.
        overwrite: if ``final_dir`` already exists, replace it (the old one is renamed aside and
            deleted after the new one is in place); otherwise raise ``FileExistsError``, checked
            both before and after the body runs.
        fsync: fsync every written file and the parent directory before/after the rename.
    """
    final_dir = Path(final_dir)
    if final_dir.exists() and not overwrite:
        raise FileExistsError(f'{final_dir} already exists')
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final_dir)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        if final_dir.exists():
            if not overwrite:
                raise FileExistsError(f'{final_dir} already exists')
            old = final_dir.with_name(f'.{final_dir.name}.old-{os.getpid()}')
            if old.exists():
                shutil.rmtree(old)
            os.replace(final_dir, old)
            os.replace(tmp, final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final_dir)
        if fsync:
            fsync_dir(final_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def remove_stale_tmp(parent: str | os.PathLike[str], only_dead: bool = True) -> list[Path]:
    """Remove leftovers ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` from crashed writers.

    Args:
        parent: directory to scan (non-recursive); a missing directory is fine.
        only_dead: keep entries whose pid is a live process (a concurrent writer); with False,
            remove every leftover except this process's own.

    Returns:
        The removed paths.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed = []
    for entry in sorted(parent.iterdir()):
        m = _TMP_RE.match(entry.name) or re.match(r'^\.(?P<name>.+)\.old-(?P<pid>\d+)$',
                                                  entry.name)
        if m is None:
            continue
        pid = int(m.group('pid'))
        if pid == os.getpid() or (only_dead and _pid_alive(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed
