"""Names, paths, constants, errors and the run report of the Cityscapes converter.

Cityscapes names every file ``<city>_<seq:06d>_<frame:06d>_<type><ext>`` (``csHelpers.
getCsFileInfo``; city names hold no ``_``), under ``<root>/<type>/<split>/<city>/``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from geo3d.converters.kitti.common import InputError

__all__ = [
    'CONVERTER_VERSION', 'SPLITS', 'SUBSETS', 'CROP_BOTTOM', 'SEQUENCE_DIR', 'CAMERA_DIR',
    'DISPARITY_DIR', 'GT_DIR', 'FrameName', 'parse_frame_name', 'sequence_relpath',
    'camera_relpath', 'disparity_relpath', 'gt_relpath', 'crop_height', 'InputError',
    'ConvertReport', 'parse_stem', 'ANNOTATED_FRAME',
]

CONVERTER_VERSION = '1.0.0'
#: the official folders of the Cityscapes tree
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
#: what the converter writes lists for
SUBSETS: tuple[str, ...] = ('train', 'val', 'test')
#: the ego-car hood: ManyDepth / SfMLearner cut the bottom 25 % of every image
CROP_BOTTOM = 0.25
SEQUENCE_DIR = 'leftImg8bit_sequence'
CAMERA_DIR = 'camera'
DISPARITY_DIR = 'disparity'
GT_DIR = 'gt_depths'
#: the annotated frame of a standard 30-frame snippet (the 20th frame)
ANNOTATED_FRAME = 19

_NAME_RE = re.compile(r'^(?P<city>[^_/]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_(?P<type>[A-Za-z0-9]+)'
                      r'(?P<ext>\.[a-z]+)$')


class FrameName(NamedTuple):
    """One frame of one snippet: ``city``, ``seq`` (int), ``frame`` (int)."""
    city: str
    seq: int
    frame: int

    @property
    def stem(self) -> str:
        """``<city>_<seq:06d>_<frame:06d>`` (ManyDepth's second split-file column)."""
        return f'{self.city}_{self.seq:06d}_{self.frame:06d}'

    @property
    def snippet(self) -> str:
        """``<city>_<seq:06d>``."""
        return f'{self.city}_{self.seq:06d}'

    def shifted(self, offset: int) -> 'FrameName':
        return FrameName(self.city, self.seq, self.frame + offset)


def parse_frame_name(name: str, kind: str | None = None) -> FrameName | None:
    """``FrameName`` of a file name such as ``aachen_000000_000019_leftImg8bit.png``, or None if
    the name does not follow the pattern (or its type is not ``kind``)."""
    m = _NAME_RE.match(name)
    if m is None or (kind is not None and m.group('type') != kind):
        return None
    return FrameName(m.group('city'), int(m.group('seq')), int(m.group('frame')))


def parse_stem(stem: str) -> FrameName | None:
    """``FrameName`` of ``<city>_<seq>_<frame>`` (no type), or None."""
    parts = stem.split('_')
    if len(parts) != 3 or not parts[0] or not all(p.isdigit() and len(p) == 6 for p in parts[1:]):
        return None
    return FrameName(parts[0], int(parts[1]), int(parts[2]))


def sequence_relpath(split: str, name: FrameName, ext: str = '.png') -> str:
    """``leftImg8bit_sequence/<split>/<city>/<stem>_leftImg8bit.png`` (relative to the root)."""
    return f'{SEQUENCE_DIR}/{split}/{name.city}/{name.stem}_leftImg8bit{ext}'


def camera_relpath(split: str, name: FrameName) -> str:
    """``camera/<split>/<city>/<stem>_camera.json``."""
    return f'{CAMERA_DIR}/{split}/{name.city}/{name.stem}_camera.json'


def disparity_relpath(split: str, name: FrameName) -> str:
    """``disparity/<split>/<city>/<stem>_disparity.png``."""
    return f'{DISPARITY_DIR}/{split}/{name.city}/{name.stem}_disparity.png'


def gt_relpath(name: FrameName) -> str:
    """``gt_depths/<city>/<stem>_depth.npy`` (relative to the converter's output)."""
    return f'{GT_DIR}/{name.city}/{name.stem}_depth.npy'


def crop_height(height: int, crop_bottom: float = CROP_BOTTOM) -> int:
    """Rows kept after cutting the bottom ``crop_bottom`` of an image ``height`` rows high
    (``round(H * (1 - crop_bottom))``: 768 of 1024, as ``DepthMetric(eval_split='cityscapes')``
    cuts the ground truth)."""
    if not 0.0 <= crop_bottom < 1.0:
        raise ValueError(f'crop_bottom must be in [0, 1), got {crop_bottom}')
    return int(round(height * (1.0 - crop_bottom)))


@dataclass
class ConvertReport:
    """Summary of a :func:`~geo3d.converters.cityscapes.convert` run.

    ``failed`` holds ``(where, file, reason)`` (one line per problem file, with the number of
    samples it cost); ``subsets`` maps subset name to sample count.
    """
    split: str = ''
    scanned: int = 0
    skipped: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    samples_skipped: int = 0
    subsets: dict[str, int] = field(default_factory=dict)
    gt_exported: int = 0
    gt_skipped: int = 0
    images_written: int = 0
    images_skipped: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        subsets = ', '.join(f'{k} {v}' for k, v in self.subsets.items()) or 'none'
        images = f'; images {self.images_written} resized, {self.images_skipped} kept' \
            if self.images_written or self.images_skipped else ''
        return (f'cityscapes[{self.split}]: cities {self.scanned} scanned, {self.skipped} skipped '
                f'(done before); samples: {subsets}; {self.samples_skipped} skipped, '
                f'{len(self.failed)} problem file(s); gt depth {self.gt_exported} written, '
                f'{self.gt_skipped} kept{images}; {self.files_written} files written, '
                f'{self.files_unchanged} unchanged; {self.seconds:.1f} s')
