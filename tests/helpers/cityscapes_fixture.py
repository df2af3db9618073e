"""A tiny Cityscapes tree in the real on-disk layout (``dataset-formats.md`` §3).

``write_cityscapes(root)`` writes, for every ``(split, city, seq)`` of ``snippets``, the
``leftImg8bit_sequence`` frames ``frames`` (real numbering ``<city>_<seq:06d>_<frame:06d>``, a
shortened snippet around the annotated frame ``*_000019``), and for the annotated frame its
``camera`` JSON (the real field names; the real intrinsics scaled from 2048x1024 to the tiny
size) and its 16-bit ``disparity`` PNG.

Every frame is one flat colour (:func:`fixture_color`) above the hood line and the hood colour
:data:`HOOD` in its bottom 25 %, so tests can tell which file a loaded image came from and that
the hood was cut, also after resizing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

FULL_W, FULL_H = 2048, 1024
ANNOTATED = 19
HOOD = (250, 0, 250)
CITY_CODES = {'aachen': 0, 'bochum': 1, 'frankfurt': 2, 'berlin': 3, 'bonn': 4, 'ulm': 5}
# aachen_000000_000019_camera.json (dataset-formats.md §3.3); the others vary it a little
# (real values differ per city and recording)
_CAMERAS = {
    'aachen': {'extrinsic': {'baseline': 0.209313, 'pitch': 0.038, 'roll': 0.0, 'x': 1.7,
                             'y': 0.1, 'yaw': -0.0195, 'z': 1.22},
               'intrinsic': {'fx': 2262.52, 'fy': 2265.3017905988554, 'u0': 1096.98,
                             'v0': 513.137}},
}
DEFAULT_SNIPPETS = {'train': {'aachen': (0,)}, 'test': {'berlin': (0,)}}


def camera_json(city: str, width: int, height: int) -> dict:
    """The camera JSON of ``city`` with the intrinsics scaled to ``width`` x ``height``."""
    base = _CAMERAS.get(city)
    if base is None:
        k = CITY_CODES.get(city, 7)
        base = {'extrinsic': {'baseline': 0.2 + 0.003 * k, 'pitch': 0.04, 'roll': 0.0,
                              'x': 1.7, 'y': 0.1, 'yaw': -0.02, 'z': 1.2},
                'intrinsic': {'fx': 2250.0 + 5 * k, 'fy': 2255.0 + 5 * k,
                              'u0': 1040.0 + 8 * k, 'v0': 500.0 + 4 * k}}
    sx, sy = width / FULL_W, height / FULL_H
    intr = base['intrinsic']
    return {'extrinsic': dict(base['extrinsic']),
            'intrinsic': {'fx': intr['fx'] * sx, 'fy': intr['fy'] * sy, 'u0': intr['u0'] * sx,
                          'v0': intr['v0'] * sy}}


def fixture_color(city: str, seq: int, frame: int) -> tuple[int, int, int]:
    """The flat RGB colour above the hood of frame ``frame`` of snippet ``seq`` of ``city``."""
    return ((10 + 8 * frame) % 256, (40 + 50 * seq) % 200, 20 + 30 * CITY_CODES.get(city, 7))


def disparity_values(height: int, width: int) -> np.ndarray:
    """(H, W) uint16 PNG values: disparities ramping 0.4 .. 15 px along the columns (the tiny
    focal length makes that 2 .. 75 m), p = 0 (invalid) on every 7th pixel and p = 1 (d = 0)
    on every 11th."""
    u = np.arange(width, dtype=np.float64)[None].repeat(height, 0)
    v = np.arange(height, dtype=np.float64)[:, None].repeat(width, 1)
    d = 0.4 + 14.6 * (u / (width - 1)) * (0.5 + 0.5 * v / (height - 1))
    p = 1 + np.round(d * 256)
    flat = np.arange(height * width).reshape(height, width)
    p[flat % 7 == 3] = 0
    p[flat % 11 == 5] = 1
    return p.astype(np.uint16)


@dataclass
class CityscapesFixture:
    """What :func:`write_cityscapes` wrote."""
    root: Path
    height: int
    width: int
    frames: list[int]
    snippets: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)

    def stem(self, city: str, seq: int, frame: int) -> str:
        return f'{city}_{seq:06d}_{frame:06d}'

    def image(self, split: str, city: str, seq: int, frame: int) -> Path:
        return (self.root / 'leftImg8bit_sequence' / split / city /
                f'{self.stem(city, seq, frame)}_leftImg8bit.png')

    def camera(self, split: str, city: str, seq: int, frame: int = ANNOTATED) -> Path:
        return self.root / 'camera' / split / city / f'{self.stem(city, seq, frame)}_camera.json'

    def disparity(self, split: str, city: str, seq: int, frame: int = ANNOTATED) -> Path:
        return (self.root / 'disparity' / split / city /
                f'{self.stem(city, seq, frame)}_disparity.png')

    def camera_values(self, city: str) -> dict:
        return camera_json(city, self.width, self.height)


def write_frame(path: Path, color: Sequence[int], height: int, width: int) -> None:
    """A frame: ``color`` above the hood line, :data:`HOOD` in the bottom 25 %."""
    a = np.empty((height, width, 3), np.uint8)
    a[:] = color
    a[int(round(0.75 * height)):] = HOOD
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def write_cityscapes(root: str | Path, snippets: dict | None = None,
                     frames: Sequence[int] = range(15, 24), height: int = 64, width: int = 128,
                     disparity: bool = True) -> CityscapesFixture:
    """Write the tree (see the module docstring); ``snippets`` maps split -> city -> snippet
    numbers (default: train/aachen 0 and test/berlin 0)."""
    root = Path(root)
    snippets = {s: {c: tuple(q) for c, q in cs.items()}
                for s, cs in (snippets or DEFAULT_SNIPPETS).items()}
    fx = CityscapesFixture(root, height, width, list(frames), snippets)
    for split, cities in snippets.items():
        for city, seqs in cities.items():
            for seq in seqs:
                for f in frames:
                    write_frame(fx.image(split, city, seq, f), fixture_color(city, seq, f),
                                height, width)
                if ANNOTATED in frames:
                    cam = fx.camera(split, city, seq)
                    cam.parent.mkdir(parents=True, exist_ok=True)
                    cam.write_text(json.dumps(camera_json(city, width, height), indent=4))
                    if disparity:
                        dp = fx.disparity(split, city, seq)
                        dp.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(disparity_values(height, width)).save(dp)
    return fx
