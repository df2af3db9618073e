"""The whole demo dataset in the raw ScanNet v2 layout (scenes, split lists, label tsv)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
                      num_test: int = 1, seed: int = 0, points_per_scene: int = 30000
                      ) -> list[str]:
    """Write a demo dataset in the raw ScanNet v2 layout; returns the scene ids written.

    Room kinds run through shuffled cycles of all five kinds (train sees each kind at least
    twice with the default 12 scenes); each scene's RNG is seeded from (seed, scene number), so
    the same arguments give byte-identical files.
    """
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
    for split in ('train', 'val', 'test'):
        for scene_id in ids[split]:
            labelled = split != 'test'
            scene = make_demo_scene([seed, k], points_per_scene, kind=str(kinds[k]),
                                    labelled=labelled)
            sub = 'scans' if labelled else 'scans_test'
            write_scannet_scene(out / sub / scene_id, scene_id, scene, labelled=labelled)
            used.update(g['label'] for g in scene.seg_groups)
            written.append(scene_id)
            k += 1
    for split, lst in ids.items():
        (out / f'scannetv2_{split}.txt').write_text(''.join(f'{i}\n' for i in lst))
    write_label_tsv(out / 'scannetv2-labels.combined.tsv',
                    [c for c in TSV_ROWS if c in used])
    return written
