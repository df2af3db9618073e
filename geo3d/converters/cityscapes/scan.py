"""Discovery and validation of one Cityscapes city of one split (the converter's unit of work).

:func:`scan_city` lists the city's ``leftImg8bit_sequence`` frames (reading every image header:
size, format), parses its ``camera`` JSONs and lists its ``disparity`` maps. The result is a
JSON-friendly :class:`CityScan`, cached by the converter under ``OUT/cities/<split>/<city>.json``
and reused while :func:`listing_signature` of the city's folders is unchanged. Problem files
(corrupt image, image of another size, bad camera JSON) are recorded in ``bad_files``; the
samples that need them are skipped later, with the file named.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .camera import read_camera_json
from .common import (CAMERA_DIR, CONVERTER_VERSION, DISPARITY_DIR, SEQUENCE_DIR, FrameName,
                     parse_frame_name)

__all__ = ['CityScan', 'find_cities', 'listing_signature', 'scan_city']

_KINDS = ((SEQUENCE_DIR, 'leftImg8bit'), (CAMERA_DIR, 'camera'), (DISPARITY_DIR, 'disparity'))


@dataclass
class CityScan:
    """What the converter knows about one city of one split.

    Attributes:
        split, city: ``train`` / ``val`` / ``test`` and the city folder name.
        image_ext: extension of the sequence frames (``.png``).
        image_size: ``[W, H]`` of the city's frames (the first readable one; others must match),
            None when the city has no readable frame.
        sequences: snippet number (``'%06d'``) -> sorted frame numbers present in
            ``leftImg8bit_sequence`` (including files listed in ``bad_files``).
        cameras: ``<stem>`` -> camera fields (:class:`~.camera.CityscapesCamera`) of every
            readable camera JSON.
        disparity: sorted ``<stem>`` of the disparity maps present.
        bad_files: path relative to the root -> reason (unusable image or camera JSON).
        signature: fingerprint of the three folders (see :func:`listing_signature`).
        verified: every image was fully decoded (``verify_images``), not only its header.
    """
    split: str
    city: str
    image_ext: str = '.png'
    image_size: list[int] | None = None
    sequences: dict[str, list[int]] = field(default_factory=dict)
    cameras: dict[str, dict[str, float]] = field(default_factory=dict)
    disparity: list[str] = field(default_factory=list)
    bad_files: dict[str, str] = field(default_factory=dict)
    signature: dict[str, list[int]] = field(default_factory=dict)
    verified: bool = False
    version: str = CONVERTER_VERSION

    @property
    def key(self) -> str:
        return f'{self.split}/{self.city}'

    def frames(self, seq: int) -> list[int]:
        return self.sequences.get(f'{seq:06d}', [])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> 'CityScan':
        return cls(**obj)


def find_cities(root: str | os.PathLike[str], split: str) -> list[str]:
    """Sorted city folders of ``split`` in any of ``leftImg8bit_sequence``, ``camera`` and
    ``disparity`` (a city missing from one of them is then reported, not silently lost)."""
    root = Path(root)
    cities: set[str] = set()
    for kind, _ in _KINDS:
        d = root / kind / split
        if d.is_dir():
            cities |= {p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith('.')}
    return sorted(cities)


def listing_signature(root: str | os.PathLike[str], split: str, city: str
                      ) -> dict[str, list[int]]:
    """``[count, total bytes, newest mtime_ns]`` of the city's folder in each of the three
    trees; a cached scan is reused only while this is unchanged."""
    sig = {}
    for kind, _ in _KINDS:
        d = Path(root) / kind / split / city
        n = size = mtime = 0
        if d.is_dir():
            for entry in os.scandir(d):
                st = entry.stat()
                n, size, mtime = n + 1, size + st.st_size, max(mtime, st.st_mtime_ns)
        sig[kind] = [n, size, mtime]
    return sig


def _names(d: Path, kind: str, city: str) -> dict[FrameName, str]:
    """FrameName -> file name of the ``<city>_<seq>_<frame>_<kind>.*`` files in ``d``."""
    out: dict[FrameName, str] = {}
    if not d.is_dir():
        return out
    for entry in os.scandir(d):
        name = parse_frame_name(entry.name, kind)
        if name is not None and name.city == city:
            out[name] = entry.name
    return out


def _check_image(path: Path, verify: bool) -> tuple[int, int]:
    """(W, H) of an RGB image; raises ValueError with the reason."""
    try:
        with Image.open(path) as im:
            size = im.size
            mode = im.mode
            if verify:
                im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f'corrupt image: {e}') from None
    if mode not in ('RGB', 'RGBA', 'P', 'L'):
        raise ValueError(f'unexpected image mode {mode} (expected 8-bit RGB)')
    return size


def scan_city(root: str | os.PathLike[str], split: str, city: str,
              verify_images: bool = False) -> CityScan:
    """Scan ``split``/``city`` of a Cityscapes root (see the module docstring).

    Args:
        root: the Cityscapes root (holding ``leftImg8bit_sequence/``, ``camera/``,
            ``disparity/``).
        verify_images: fully decode-check every frame (slow); default reads headers only.
    """
    root = Path(root)
    scan = CityScan(split=split, city=city, verified=verify_images,
                    signature=listing_signature(root, split, city))
    seq_dir = root / SEQUENCE_DIR / split / city
    frames = _names(seq_dir, 'leftImg8bit', city)
    exts = sorted({os.path.splitext(f)[1] for f in frames.values()})
    scan.image_ext = '.png' if '.png' in exts or not exts else exts[0]
    sequences: dict[str, set[int]] = {}
    for name in sorted(frames):
        fname = frames[name]
        rel = f'{SEQUENCE_DIR}/{split}/{city}/{fname}'
        if os.path.splitext(fname)[1] != scan.image_ext:
            continue
        sequences.setdefault(f'{name.seq:06d}', set()).add(name.frame)
        try:
            size = _check_image(seq_dir / fname, verify_images)
        except ValueError as e:
            scan.bad_files[rel] = str(e)
            continue
        if scan.image_size is None:
            scan.image_size = list(size)
        elif list(size) != scan.image_size:
            w, h = scan.image_size
            scan.bad_files[rel] = (f'image is {size[0]}x{size[1]} but the other frames of {city} '
                                   f'are {w}x{h}')
    scan.sequences = {k: sorted(v) for k, v in sorted(sequences.items())}
    cam_dir = root / CAMERA_DIR / split / city
    for name, fname in sorted(_names(cam_dir, 'camera', city).items()):
        try:
            scan.cameras[name.stem] = read_camera_json(cam_dir / fname).to_json()
        except (ValueError, OSError) as e:
            msg = str(e)
            prefix = f'{cam_dir / fname}: '
            scan.bad_files[f'{CAMERA_DIR}/{split}/{city}/{fname}'] = \
                msg[len(prefix):] if msg.startswith(prefix) else msg
    scan.disparity = sorted(n.stem for n in _names(root / DISPARITY_DIR / split / city,
                                                   'disparity', city))
    return scan
