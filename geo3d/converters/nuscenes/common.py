"""Constants, exceptions and the run report shared by the nuScenes converter modules."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

CONVERTER_VERSION = '1.0.0'
TASKS: tuple[str, ...] = ('depth', 'lidar', 'all')
CAMERA = 'CAM_FRONT'
LIDAR = 'LIDAR_TOP'
# the 13 tables NuScenes(...) loads (dataset-formats.md §4.2); a missing one fails the load
TABLES: tuple[str, ...] = ('category', 'attribute', 'visibility', 'instance', 'sensor',
                           'calibrated_sensor', 'ego_pose', 'log', 'scene', 'sample',
                           'sample_data', 'sample_annotation', 'map')
# version -> {geo3d subset: split name of nuscenes.utils.splits.create_splits_scenes()}
OFFICIAL_SPLITS: dict[str, dict[str, str]] = {
    'v1.0-mini': {'train': 'mini_train', 'val': 'mini_val'},
    'v1.0-trainval': {'train': 'train', 'val': 'val'},
    'v1.0-test': {'test': 'test'},
}
# condition tags from scene descriptions (md4all's keyword rule: 'night' -> night, 'rain' -> rain)
CONDITION_KEYWORDS: dict[str, str] = {'night': 'night', 'rain': 'rain'}
CONDITIONS: tuple[str, ...] = ('day', 'night', 'rain')
DEVKIT_HINT = "pip install 'nuscenes-devkit==1.2.0' (the geo3d[data] extra)"


def scene_tags(description: str) -> list[str]:
    """Condition tags of a scene: ``'night'`` / ``'rain'`` when the description names them
    (case-insensitive), ``'day'`` when it does not say ``night``."""
    text = description.lower()
    tags = [tag for word, tag in CONDITION_KEYWORDS.items() if word in text]
    if 'night' not in tags:
        tags.insert(0, 'day')
    return tags


def import_devkit() -> Any:
    """The ``nuscenes`` package (imported lazily: it pulls matplotlib, shapely, cv2)."""
    try:
        import nuscenes
        import nuscenes.nuscenes  # noqa: F401
    except ImportError as e:
        raise ImportError(f"geo3d's nuScenes converter reads the dataset with the devkit: "
                          f'{DEVKIT_HINT}') from e
    return nuscenes


class InputError(Exception):
    """Bad global input (root, version, tables, split names): nothing is converted."""


class FrameError(Exception):
    """One frame cannot be used: ``path`` is the offending file, ``reason`` says why."""

    def __init__(self, scene: str, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f'{scene}: {path}: {reason}')
        self.scene = scene
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (FrameError, (self.scene, self.path, self.reason))

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.scene, self.path, self.reason)


@dataclass
class TaskReport:
    """Counts of one task (``depth`` or ``lidar``) of a :func:`~.convert.convert` run.

    ``failed`` holds ``(scene, file, reason)``: the frame (or sweep) was skipped.
    """
    name: str
    scenes: int = 0
    frames_written: int = 0
    frames_skipped: int = 0          # valid output of an earlier run, kept
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    subsets: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        subsets = ', '.join(f'{k} {v}' for k, v in self.subsets.items()) or 'none'
        return (f'{self.name}: {self.scenes} scenes, {self.frames_written} frames written, '
                f'{self.frames_skipped} kept (done before), {len(self.failed)} failed; '
                f'subsets: {subsets}')


@dataclass
class ConvertReport:
    """Summary of a :func:`~geo3d.converters.nuscenes.convert` run."""
    version: str = ''
    split_source: str = ''
    tasks: dict[str, TaskReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[tuple[str, str, str]]:
        return [f for t in self.tasks.values() for f in t.failed]

    def summary(self) -> str:
        parts = '; '.join(t.summary() for t in self.tasks.values()) or 'nothing to do'
        return (f'nuscenes[{self.version}, split {self.split_source}]: {parts}; '
                f'{len(self.warnings)} warnings; {self.seconds:.1f} s')
