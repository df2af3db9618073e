"""Split lists in Monodepth2's text format and the drive-level ``auto`` split.

A split file has one line per sample, ``<date>/<date>_drive_<dddd>_sync <frame_index> <side>``,
``side`` in ``l`` / ``r`` (Monodepth2 also accepts ``2`` / ``3``). Eigen's test list pads the
frame index to 10 digits (``... 0000000069 l``); the training lists do not (``... 473 r``).
Named splits live in ``<split_dir>/<split>/{train,val,test}_files.txt`` as in Monodepth2's
``splits/`` folder (not shipped with geo3d; see :data:`~.common.SPLIT_FILES_URL`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

from .common import SIDE_TO_CAM, SPLIT_FILES_URL, SUBSETS, InputError
from .drives import DriveScan


class SplitLine(NamedTuple):
    """One sample of a split list; ``source``/``lineno`` say where it was read (if it was)."""
    folder: str
    frame: int
    side: str
    source: str = ''
    lineno: int = 0

    def where(self) -> str:
        return f'{self.source}:{self.lineno}' if self.source else '<auto split>'

    def format(self, pad: bool = False) -> str:
        return format_split_line(self.folder, self.frame, self.side, pad)


def format_split_line(folder: str, frame: int, side: str, pad: bool = False) -> str:
    """``'<folder> <frame> <side>'``, the frame zero-padded to 10 digits when ``pad``."""
    return f'{folder} {frame:010d} {side}' if pad else f'{folder} {frame} {side}'


def read_split_file(path: str | os.PathLike[str]) -> list[SplitLine]:
    """Parse a Monodepth2 split file; blank lines are skipped.

    Raises:
        InputError: naming ``file:line`` of a line that is not ``<date>/<drive> <int> l|r|2|3``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f'cannot read split file {path}: {e}') from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[0].count('/') != 1 or parts[2] not in SIDE_TO_CAM:
            raise InputError(f'{path}:{lineno}: expected "<date>/<drive folder> <frame index> '
                             f'l|r", got {line.strip()!r}')
        try:
            frame = int(parts[1])
        except ValueError:
            raise InputError(f'{path}:{lineno}: frame index {parts[1]!r} is not an integer') \
                from None
        if frame < 0:
            raise InputError(f'{path}:{lineno}: negative frame index {frame}')
        out.append(SplitLine(parts[0], frame, parts[2], str(path), lineno))
    return out


def find_split_files(split: str, split_dirs: Sequence[str | os.PathLike[str]]
                     ) -> dict[str, Path]:
    """``{subset: path}`` of the ``<subset>_files.txt`` of ``split``.

    Each directory in ``split_dirs`` is tried as Monodepth2's ``splits/`` folder
    (``<dir>/<split>/<subset>_files.txt``) and as the split's own folder
    (``<dir>/<subset>_files.txt``); the first directory with any of the files wins.

    Raises:
        InputError: no directory holds any ``{train,val,test}_files.txt`` of the split.
    """
    tried = []
    for d in split_dirs:
        for cand in (Path(d) / split, Path(d)):
            found = {s: cand / f'{s}_files.txt' for s in SUBSETS
                     if (cand / f'{s}_files.txt').is_file()}
            tried.append(str(cand))
            if found:
                return found
    raise InputError(
        f'no split files {{train,val,test}}_files.txt for split {split!r} in {tried}. geo3d does '
        f'not ship the Eigen / Eigen-Zhou lists: take the folder splits/{split}/ from Monodepth2 '
        f'({SPLIT_FILES_URL}) and pass its parent with --split-dir, or use --split auto')


def assign_auto_drives(scans: Sequence[DriveScan], num_val: int = 1, num_test: int = 1
                       ) -> dict[str, list[DriveScan]]:
    """Hold out whole drives: in folder order, the last ``num_test`` drives that have a velodyne
    scan for every frame are ``test``, the last ``num_val`` of the rest ``val``, the rest
    ``train``.

    Raises:
        InputError: fewer usable drives than ``num_test + num_val + 1`` (naming the counts).
    """
    if num_val < 0 or num_test < 0:
        raise InputError(f'num_val and num_test must be >= 0, got {num_val}, {num_test}')
    ordered = sorted(scans, key=lambda s: s.folder)
    full_velo = [s for s in ordered if s.velodyne_frames and len(s.velodyne_frames) ==
                 len(s.frames)]
    test = full_velo[len(full_velo) - num_test:] if num_test else []
    if len(test) < num_test:
        raise InputError(f'auto split needs {num_test} test drive(s) with a velodyne scan for '
                         f'every frame, found {len(full_velo)} among {len(ordered)} usable '
                         'drive(s)')
    held = {s.folder for s in test}
    rest = [s for s in ordered if s.folder not in held]
    val = rest[len(rest) - num_val:] if num_val else []
    held |= {s.folder for s in val}
    train = [s for s in rest if s.folder not in held]
    if len(val) < num_val or not train:
        raise InputError(f'auto split needs at least {num_val + num_test + 1} usable drives '
                         f'({num_val} val + {num_test} test + >= 1 train), found {len(ordered)}')
    return {'train': train, 'val': val, 'test': test}


def frames_with_neighbours(scan: DriveScan, offsets: Sequence[int]) -> list[int]:
    """Frames ``f`` of ``scan`` for which every ``f + o`` (``o`` in ``offsets``) exists."""
    have = set(scan.frames)
    return [f for f in scan.frames if all(f + o in have for o in offsets)]


def auto_split_lines(assignment: dict[str, list[DriveScan]], offsets: Sequence[int] = (-1, 1),
                     sides: Sequence[str] = ('l', 'r'), test_side: str = 'l'
                     ) -> dict[str, list[SplitLine]]:
    """Split lines of an :func:`assign_auto_drives` assignment.

    ``train``/``val``: every frame with all temporal neighbours ``offsets``, once per side in
    ``sides`` (both cameras as independent monocular sequences, as Eigen-Zhou does). ``test``:
    every frame with a velodyne scan, camera ``test_side`` only (as Eigen's test list).
    """
    for s in list(sides) + [test_side]:
        if s not in SIDE_TO_CAM:
            raise InputError(f'unknown side {s!r}; choose from {sorted(SIDE_TO_CAM)}')
    out: dict[str, list[SplitLine]] = {}
    for subset in ('train', 'val'):
        out[subset] = [SplitLine(s.folder, f, side)
                       for s in assignment.get(subset, [])
                       for f in frames_with_neighbours(s, offsets) for side in sides]
    out['test'] = [SplitLine(s.folder, f, test_side) for s in assignment.get('test', [])
                   for f in s.velodyne_frames]
    return out
