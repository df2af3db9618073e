"""Constants, exceptions and result records shared by the ScanNet converter modules."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

CONVERTER_VERSION = '1.0.0'
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
TSV_NAME = 'scannetv2-labels.combined.tsv'
SPLIT_SOURCE = ('the ScanNet repository, Tasks/Benchmark/scannetv2_{train,val,test}.txt '
                '(https://github.com/ScanNet/ScanNet/tree/master/Tasks/Benchmark)')
SCENE_ID_RE = re.compile(r'^scene\d{4}_\d{2}$')
ARRAY_FILES: tuple[str, ...] = ('coord', 'color', 'normal', 'segment20', 'segment200', 'instance',
                                'axis_align_matrix')
MISMATCH_WARN = 0.01  # warn when labels.ply disagrees with the derived labels on >1% of vertices


class SceneError(Exception):
    """A scene cannot be converted: ``path`` is the offending file, ``reason`` says why."""

    def __init__(self, scene_id: str, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f'{scene_id}: {path}: {reason}')
        self.scene_id = scene_id
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (SceneError, (self.scene_id, self.path, self.reason))


class InputError(Exception):
    """Bad global input (missing root, split files or tsv): nothing can be converted."""


@dataclass
class SceneResult:
    """Outcome of one successfully converted scene."""
    scene_id: str
    split: str
    points: int
    label_mismatch: float | None = None  # labels.ply vs derived segment20; None for test
    warnings: list[str] = field(default_factory=list)
    class_points20: list[int] | None = None
    class_points200: list[int] | None = None
    frames: int | None = None  # RGB-D frames written (None: frames not requested)


@dataclass
class ConvertReport:
    """Summary of a :func:`convert` run. ``failed`` holds ``(scene_id, file, reason)``."""
    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    points: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    frames: int | None = None  # RGB-D frames written this run (None: frames not requested)

    def summary(self) -> str:
        s = max(self.seconds, 1e-9)
        frames = '' if self.frames is None else f', {self.frames:,} RGB-D frames'
        return (f'scannet: {self.converted} converted, {self.skipped} skipped (done before), '
                f'{len(self.failed)} failed, {self.points:,} points{frames} in '
                f'{self.seconds:.1f} s '
                f'({self.converted / s:.1f} scenes/s, {self.points / s:,.0f} points/s)')
