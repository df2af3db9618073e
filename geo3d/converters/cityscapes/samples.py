"""Samples (target frame + temporal neighbours) and split lists of the Cityscapes converter.

Split files use ManyDepth's format (``splits/cityscapes/test_files.txt``,
``splits/cityscapes_preprocessed/{train,val}_files.txt``): one line per target frame,
``<city> <city>_<seq:06d>_<frame:06d>``, e.g. ``ulm ulm_000064_000012``.

Frame offsets count ``sample_gap`` frames: offset ``-1`` with ``sample_gap=2`` is frame t - 2, as
SfMLearner's ``cityscapes_loader.py`` and ManyDepth (the snippets are recorded at ~17 Hz; a gap
of 2 roughly matches KITTI's 10 Hz).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from .camera import CityscapesCamera
from .common import (ANNOTATED_FRAME, CAMERA_DIR, FrameName, InputError, camera_relpath,
                     disparity_relpath, parse_stem, sequence_relpath)
from .scan import CityScan

__all__ = ['SplitLine', 'read_split_file', 'format_split_line', 'Target', 'Sample',
           'Problems', 'resolve_camera', 'build_samples', 'sequence_targets',
           'annotated_targets', 'random_snippet_split']


class SplitLine(NamedTuple):
    """One line of a split file; ``source``/``lineno`` say where it was read."""
    name: FrameName
    source: str = ''
    lineno: int = 0

    def where(self) -> str:
        return f'{self.source}:{self.lineno}' if self.source else '<auto split>'


def format_split_line(name: FrameName) -> str:
    """``'<city> <city>_<seq>_<frame>'``."""
    return f'{name.city} {name.stem}'


def read_split_file(path: str | os.PathLike[str]) -> list[SplitLine]:
    """Parse a ManyDepth Cityscapes split file; blank lines are skipped.

    Raises:
        InputError: naming ``file:line`` of a line that is not ``<city> <city>_<seq>_<frame>``.
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
        name = parse_stem(parts[1]) if len(parts) == 2 else None
        if name is None or name.city != parts[0]:
            raise InputError(f'{path}:{lineno}: expected "<city> <city>_<seq:06d>_<frame:06d>" '
                             f'(ManyDepth\'s Cityscapes format), got {line.strip()!r}')
        out.append(SplitLine(name, str(path), lineno))
    return out


class Target(NamedTuple):
    """A candidate target frame: the official ``split`` folder it is in, and where it came from."""
    split: str
    name: FrameName
    where: str = '<auto split>'


@dataclass
class Sample:
    """A target frame whose needed files all exist (paths relative to the Cityscapes root)."""
    split: str
    name: FrameName
    width: int
    height: int
    camera: CityscapesCamera
    camera_file: str
    image_ext: str = '.png'

    def image(self, offset: int = 0) -> str:
        return sequence_relpath(self.split, self.name.shifted(offset), self.image_ext)


class Problems:
    """Problem files, each with the reason and the number of samples it cost (first seen wins)."""

    def __init__(self) -> None:
        self.files: dict[str, list] = {}  # path -> [where, reason, samples]

    def add(self, where: str, path: str, reason: str) -> None:
        if path in self.files:
            self.files[path][2] += 1
        else:
            self.files[path] = [where, reason, 1]

    def as_failed(self) -> list[tuple[str, str, str]]:
        """``(where, file, 'reason; N sample(s) skipped')`` in insertion order."""
        return [(w, p, f'{r}; {n} sample(s) skipped') for p, (w, r, n) in self.files.items()]


def resolve_camera(scan: CityScan, name: FrameName) -> str | None:
    """The ``<stem>`` of the camera JSON for frame ``name``: its own if it has one, else the
    nearest annotated frame of the same snippet (Cityscapes ships one camera JSON per annotated
    frame; the camera does not change within a snippet). None if the snippet has none."""
    if name.stem in scan.cameras:
        return name.stem
    prefix = f'{name.snippet}_'
    cands = [s for s in scan.cameras if s.startswith(prefix)]
    if not cands:
        return None
    return min(cands, key=lambda s: (abs(int(s.rsplit('_', 1)[1]) - name.frame), s))


def _expected_camera(scan: CityScan, name: FrameName) -> str:
    """The camera file a snippet without one would have: the annotated ``*_000019`` frame's for
    a standard snippet, else a glob of the snippet's camera files."""
    frames = scan.frames(name.seq)
    if frames and frames[0] <= ANNOTATED_FRAME <= frames[-1]:
        return camera_relpath(scan.split, FrameName(name.city, name.seq, ANNOTATED_FRAME))
    return f'{CAMERA_DIR}/{scan.split}/{name.city}/{name.snippet}_*_camera.json'


def sequence_targets(scan: CityScan, offsets: Sequence[int], sample_gap: int,
                     snippets: set[int] | None = None) -> list[Target]:
    """Every frame t of the city's snippets (or of ``snippets``) whose neighbours
    ``t + o * sample_gap`` lie inside the snippet's frame range (ManyDepth's training lists:
    all frames of a 30-frame snippet but the first and last two)."""
    out = []
    for seq_text, frames in scan.sequences.items():
        seq = int(seq_text)
        if snippets is not None and seq not in snippets or not frames:
            continue
        lo, hi = frames[0], frames[-1]
        for f in frames:
            if all(lo <= f + o * sample_gap <= hi for o in offsets):
                out.append(Target(scan.split, FrameName(scan.city, seq, f)))
    return out


def annotated_targets(scan: CityScan) -> list[Target]:
    """The annotated frames of a city (those with a camera JSON or a disparity map: in the
    official data the ``*_000019`` frame of each snippet), sorted."""
    stems = set(scan.cameras) | set(scan.disparity)
    stems |= {os.path.basename(p).rsplit('_', 1)[0] for p in scan.bad_files
              if p.startswith(f'{CAMERA_DIR}/')}
    names = sorted(n for n in (parse_stem(s) for s in stems) if n is not None)
    return [Target(scan.split, n) for n in names]


def random_snippet_split(snippets: Sequence[tuple[str, int]], val_fraction: float, seed: int
                         ) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """Seeded random (train, val) split of ``(city, seq)`` snippets (ManyDepth used a random
    90/10 split of the train-city data, seed 8964; here whole snippets are held out, so no
    val frame has a train neighbour). ``round(fraction * n)`` snippets go to val, at least one
    when ``val_fraction > 0`` and there are two or more snippets."""
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f'val_fraction must be in [0, 1), got {val_fraction}')
    ordered = sorted(snippets)
    n_val = int(round(val_fraction * len(ordered)))
    if val_fraction > 0 and n_val == 0 and len(ordered) >= 2:
        n_val = 1
    perm = np.random.default_rng(seed).permutation(len(ordered))
    val = {ordered[i] for i in perm[:n_val]}
    return {s for s in ordered if s not in val}, val


def build_samples(targets: Sequence[Target], scans: dict[str, CityScan], offsets: Sequence[int],
                  sample_gap: int, need_disparity: bool, problems: Problems
                  ) -> tuple[list[Sample], int]:
    """Resolve ``targets`` into :class:`Sample` s.

    A target is kept when its frame and every neighbour ``t + o * sample_gap`` exist with a
    readable header, its snippet has a camera JSON, and (``need_disparity``) its disparity map
    exists. Otherwise every missing/bad file is added to ``problems`` (with the file and the
    reason) and the target is skipped.

    Returns:
        (samples in target order, number of targets skipped).
    """
    samples: list[Sample] = []
    skipped = 0
    for t in targets:
        scan = scans.get(f'{t.split}/{t.name.city}')
        if scan is None:  # the city's scan failed; reported already
            skipped += 1
            continue
        ok = True
        have = set(scan.frames(t.name.seq))
        for o in sorted({0, *offsets}, key=lambda v: (v != 0, v)):
            rel = sequence_relpath(t.split, t.name.shifted(o * sample_gap), scan.image_ext)
            what = 'target frame' if o == 0 else f'frame {o:+d} (t{o * sample_gap:+d})'
            if t.name.frame + o * sample_gap not in have:
                problems.add(t.where, rel, f'missing {what} of {t.name.stem}')
                ok = False
            elif rel in scan.bad_files:
                problems.add(t.where, rel, f'{scan.bad_files[rel]} ({what} of {t.name.stem})')
                ok = False
        cam_stem = resolve_camera(scan, t.name)
        if cam_stem is None:
            expected = _expected_camera(scan, t.name)
            reason = scan.bad_files.get(expected)
            problems.add(t.where, expected,
                         f'{reason} (the camera JSON of snippet {t.name.snippet})' if reason else
                         f'missing camera JSON of snippet {t.name.snippet} (intrinsics)')
            ok = False
        if need_disparity and t.name.stem not in scan.disparity:
            problems.add(t.where, disparity_relpath(t.split, t.name),
                         f'missing disparity map of {t.name.stem} (needed for the ground truth)')
            ok = False
        if not ok or scan.image_size is None:
            skipped += 1
            continue
        assert cam_stem is not None
        samples.append(Sample(
            split=t.split, name=t.name, width=scan.image_size[0], height=scan.image_size[1],
            camera=CityscapesCamera(**scan.cameras[cam_stem]),
            camera_file=camera_relpath(t.split, parse_stem(cam_stem)),  # type: ignore[arg-type]
            image_ext=scan.image_ext))
    return samples, skipped
