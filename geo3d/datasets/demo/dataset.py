"""The whole demo dataset in the raw ScanNet v2 layout (scenes, split lists, label tsv)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .frames import demo_intrinsics, write_demo_sens
from .labels import TSV_ROWS
from .recipes import _RECIPES
from .scene import make_demo_scene
from .writers import write_label_tsv, write_scannet_scene


def demo_scene_ids(num_train: int, num_val: int, num_test: int) -> dict[str, list[str]]:
    """Scene ids per split: train/val from scene0000_00, test from scene0707_00 (as the real
    test split) or right after train+val if that overlaps."""
    tv = [f'scene{k:04d}_00' for k in range(num_train + num_val)]
    start = max(707, num_train + num_val)
    return {'train': tv[:num_train], 'val': tv[num_train:],
            'test': [f'scene{start + k:04d}_00' for k in range(num_test)]}


def make_demo_scannet(out_dir: str | os.PathLike[str], num_train: int = 12, num_val: int = 4,
                      num_test: int = 1, seed: int = 0, points_per_scene: int = 30000,
                      frames: int = 0, frame_size: tuple[int, int] = (160, 120),
                      progress: bool = False) -> list[str]:
    """Write a demo dataset in the raw ScanNet v2 layout; returns the scene ids written.

    Room kinds run through shuffled cycles of all five kinds (train sees each kind at least
    twice with the default 12 scenes); each scene's RNG is seeded from (seed, scene number), so
    the same arguments give byte-identical files.

    With ``frames > 0`` every scene also gets ``<id>.sens``: ``frames`` RGB-D views of
    ``frame_size`` (width, height) rendered from inside the room (see :mod:`.frames`), and its
    ``.txt`` states that camera. The meshes are the same as without frames.
    """
    if frames < 0:
        raise ValueError(f'frames must be >= 0, got {frames}')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = demo_scene_ids(num_train, num_val, num_test)
    total = num_train + num_val + num_test
    kind_rng = np.random.default_rng([seed, 7919])
    kinds = [k for _ in range(total // len(_RECIPES) + 1)
             for k in kind_rng.permutation(list(_RECIPES))][:total]
    written: list[str] = []
    used = set()
    k = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc='demo scannet', unit='scene', dynamic_ncols=True)
    for split in ('train', 'val', 'test'):
        for scene_id in ids[split]:
            labelled = split != 'test'
            scene = make_demo_scene([seed, k], points_per_scene, kind=str(kinds[k]),
                                    labelled=labelled)
            sub = 'scans' if labelled else 'scans_test'
            if frames:
                write_demo_sens(out / sub / scene_id / f'{scene_id}.sens', scene, frames,
                                size=frame_size, seed=[seed, k, 0x5E75])
                write_scannet_scene(out / sub / scene_id, scene_id, scene, labelled=labelled,
                                    frames=frames,
                                    camera=(frame_size, demo_intrinsics(*frame_size)))
            else:
                write_scannet_scene(out / sub / scene_id, scene_id, scene, labelled=labelled)
            used.update(g['label'] for g in scene.seg_groups)
            written.append(scene_id)
            k += 1
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    for split, lst in ids.items():
        (out / f'scannetv2_{split}.txt').write_text(''.join(f'{i}\n' for i in lst))
    write_label_tsv(out / 'scannetv2-labels.combined.tsv',
                    [c for c in TSV_ROWS if c in used])
    return written
