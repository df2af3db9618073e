"""Loading a nuScenes version with the devkit, the train/val scene split, sensor poses and
sample_data chains (all through ``nuscenes-devkit``: ``NuScenes``, ``transform_matrix``,
``create_splits_scenes``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .common import OFFICIAL_SPLITS, TABLES, FrameError, InputError, import_devkit


def load_nuscenes(root: str | Path, version: str) -> Any:
    """``NuScenes(version, root)``, with missing or broken input reported as :class:`InputError`
    naming the file (the devkit itself fails with a bare assertion or KeyError)."""
    import_devkit()
    from nuscenes.nuscenes import NuScenes
    root = Path(root)
    if not root.is_dir():
        raise InputError(f'nuScenes root {root} is not a directory')
    table_dir = root / version
    if not table_dir.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith('v1.0'))
        raise InputError(f'no table folder {table_dir} for version {version!r} (versions under '
                         f'{root}: {have or "none"}); unpack the metadata archive there')
    missing = [str(table_dir / f'{t}.json') for t in TABLES
               if not (table_dir / f'{t}.json').is_file()]
    if missing:
        raise InputError(f'{len(missing)} nuScenes table(s) missing: {", ".join(missing)}')
    try:
        return NuScenes(version=version, dataroot=str(root), verbose=False)
    except json.JSONDecodeError as e:
        raise InputError(f'{_broken_table(table_dir)}: not valid JSON ({e})') from e
    except (AssertionError, KeyError, IndexError, TypeError, FileNotFoundError) as e:
        raise InputError(f'nuScenes {version} under {root} does not load with nuscenes-devkit '
                         f'({type(e).__name__}: {e}); check the tables in {table_dir} and the '
                         'map / lidarseg files they name') from e


def _broken_table(table_dir: Path) -> str:
    """The first table file that does not parse (only called after a load failed)."""
    for name in sorted(table_dir.glob('*.json')):
        try:
            json.loads(name.read_text())
        except (ValueError, OSError):
            return str(name)
    return str(table_dir)


def assign_scenes(names: Sequence[str], version: str, val_scenes: Sequence[str] | None = None
                  ) -> tuple[dict[str, str], str, list[str]]:
    """Subset (``'train'``, ``'val'`` or ``'test'``) of every scene name.

    With ``val_scenes`` (an explicit override, e.g. for a synthetic dataset): those scenes are
    ``val``, every other scene ``train``. Otherwise the official split of
    ``nuscenes.utils.splits.create_splits_scenes()`` for ``version`` (:data:`OFFICIAL_SPLITS`:
    mini_train/mini_val, train/val, test); scenes in no official list are left out with a
    warning.

    Returns:
        (scene -> subset, a description of the source, warnings).

    Raises:
        InputError: unknown override scenes, an unknown version without override, or no scene
            of this version in the official lists.
    """
    names = list(names)
    if val_scenes is not None:
        unknown = sorted(set(val_scenes) - set(names))
        if unknown:
            raise InputError(f'--val-scenes names scenes that are not in this version: {unknown} '
                             f'(it has {len(names)} scenes, e.g. {names[:3]})')
        val = set(val_scenes)
        return ({n: 'val' if n in val else 'train' for n in names},
                f'override ({len(val)} val scenes)', [])
    if version not in OFFICIAL_SPLITS:
        raise InputError(f'no official split for version {version!r} (known: '
                         f'{sorted(OFFICIAL_SPLITS)}); pass --val-scenes')
    import_devkit()
    from nuscenes.utils.splits import create_splits_scenes
    official = create_splits_scenes()
    where: dict[str, str] = {}
    for subset, split_name in OFFICIAL_SPLITS[version].items():
        for n in official[split_name]:
            where[n] = subset
    out = {n: where[n] for n in names if n in where}
    if not out:
        raise InputError(f'none of the {len(names)} scenes of {version} (e.g. {names[:3]}) are in '
                         f'the official {"/".join(OFFICIAL_SPLITS[version].values())} split; pass '
                         '--val-scenes to split them explicitly')
    left = [n for n in names if n not in where]
    warnings = [f'{n}: not in the official {version} split, left out' for n in left]
    return out, 'official ' + '/'.join(OFFICIAL_SPLITS[version].values()), warnings


def record_pose(nusc: Any, sd: dict) -> tuple[np.ndarray, np.ndarray]:
    """(global_from_ego, ego_from_sensor), (4, 4) float64 each, of a sample_data record, from its
    ego_pose and calibrated_sensor with the devkit's ``transform_matrix``."""
    from nuscenes.utils.geometry_utils import transform_matrix
    from pyquaternion import Quaternion
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    return (transform_matrix(pose['translation'], Quaternion(pose['rotation'])),
            transform_matrix(cs['translation'], Quaternion(cs['rotation'])))


def global_from_sensor(nusc: Any, sd: dict) -> np.ndarray:
    """(4, 4) sensor -> global transform of a sample_data record at its own timestamp."""
    g_e, e_s = record_pose(nusc, sd)
    return g_e @ e_s


def sensor_chain(nusc: Any, scene: dict, channel: str) -> list[dict]:
    """All sample_data records of ``channel`` in ``scene`` (key frames and sweeps), in time order:
    from the first sample's record back along ``prev``, then forward along ``next``."""
    first = nusc.get('sample', scene['first_sample_token'])
    tok = first['data'].get(channel)
    if tok is None:
        raise FrameError(scene['name'], f'sample {first["token"]}',
                         f'the first sample has no {channel} data')
    seen = {tok}
    rec = nusc.get('sample_data', tok)
    while rec['prev']:
        if rec['prev'] in seen:
            raise FrameError(scene['name'], f'sample_data {rec["token"]}', 'prev chain loops')
        seen.add(rec['prev'])
        rec = nusc.get('sample_data', rec['prev'])
    chain = [rec]
    visited = {rec['token']}
    while rec['next']:
        if rec['next'] in visited:
            raise FrameError(scene['name'], f'sample_data {rec["token"]}', 'next chain loops')
        visited.add(rec['next'])
        rec = nusc.get('sample_data', rec['next'])
        chain.append(rec)
    return chain
