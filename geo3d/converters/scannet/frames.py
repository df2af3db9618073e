"""RGB-D frames of a ScanNet scan: sources (``.sens`` or an exported folder), sampling, and the
per-scene ``frames/`` folder the converter writes (``--frames-every K``).

Sources
    :class:`SensSource` streams ``<scene>.sens`` (see :mod:`.sens`). :class:`ExportedSource`
    reads what ScanNet's ``SensReader/python/reader.py`` exports::

        DIR/color/<N>.jpg    colour at the colour resolution (1296x968 in ScanNet)
        DIR/depth/<N>.png    uint16 depth in millimetres at the depth resolution (640x480)
        DIR/pose/<N>.txt     4x4 camera-to-world, one row per line (``-inf`` = invalid)
        DIR/intrinsic/intrinsic_color.txt, intrinsic_depth.txt   4x4 pixel intrinsics

Sampling
    :func:`select_frames` keeps every ``k``-th frame among those with a valid (finite) pose, so
    frames whose tracking failed never count.

Output (one folder per scene, written inside the converter's atomic scene directory, or as its
own atomic directory when frames are added to an already converted scene)::

    scenes/<id>/frames/color/<fid>.jpg   (H, W, 3) RGB JPEG; fid = 6-digit source frame number
                       depth/<fid>.png   (Hd, Wd) uint16 PNG, millimetres, 0 = no measurement
                       poses.npy         (F, 4, 4) float32 camera-to-world, RAW scan frame
                                         (the frame of coord.npy; aligned = axis_align_matrix @)
                       frame_ids.npy     (F,) int64 source frame numbers, increasing
                       meta.json         sizes, intrinsics of the WRITTEN images, options, source

Camera conventions: OpenCV pinhole (x right, y down, z forward), pixel ``(u, v)`` with integer
``u`` is the centre of column ``u``; resizing an image by ``s`` maps ``x -> (x + 0.5) s - 0.5``,
so intrinsics are scaled by :func:`resize_intrinsics` (what ``cv2.resize`` does to pixels).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from .sens import SensError, SensReader, SensRecord, pose_is_valid

__all__ = ['FRAMES_DIR', 'FRAMES_FORMAT', 'FrameOptions', 'FrameError', 'FrameSource',
           'SensSource', 'ExportedSource', 'open_frame_source', 'find_frame_source',
           'select_frames', 'resize_intrinsics', 'parse_frame_size', 'write_frames',
           'FramesResult', 'read_matrix_txt']

FRAMES_DIR = 'frames'
FRAMES_FORMAT = 1          # bump when the layout of frames/ changes
DEPTH_SHIFT_MM = 1000.0    # written depth PNGs are millimetres
_INT_STEM = re.compile(r'^\d+$')


class FrameError(ValueError):
    """A frame source is unusable: ``path`` is the offending file, ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f'{path}: {reason}')
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple:
        return (FrameError, (self.path, self.reason))


@dataclass
class FrameOptions:
    """What the converter writes per scene.

    Attributes:
        every: keep every ``every``-th frame with a valid pose (1 = all valid frames).
        size: ``'depth'`` (colour resized to the depth resolution, the default), ``'native'``
            (colour and depth at their own resolutions) or ``(width, height)`` for both.
        jpeg_quality: quality of re-encoded colour JPEGs (unresized JPEGs are copied as is).
        frames_dir: optional root of exported folders, ``frames_dir/<scene_id>/color ...``.
    """
    every: int = 1
    size: str | tuple[int, int] = 'depth'
    jpeg_quality: int = 95
    frames_dir: str | None = None

    def __post_init__(self) -> None:
        if int(self.every) < 1:
            raise ValueError(f'frames every must be >= 1, got {self.every}')
        self.size = parse_frame_size(self.size)
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality}')

    def describe(self) -> dict:
        return {'every': int(self.every),
                'size': self.size if isinstance(self.size, str) else list(self.size),
                'jpeg_quality': int(self.jpeg_quality)}


def parse_frame_size(text: str | Sequence[int]) -> str | tuple[int, int]:
    """``'depth'``, ``'native'`` or ``'WxH'`` (e.g. ``'320x240'``) -> option value."""
    if not isinstance(text, str):
        w, h = (int(v) for v in text)
    elif text in ('depth', 'native'):
        return text
    else:
        m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
        if m is None:
            raise ValueError(f"frame size must be 'depth', 'native' or WxH like 320x240, got "
                             f'{text!r}')
        w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise ValueError(f'frame size must be positive, got {w}x{h}')
    return (w, h)


def resize_intrinsics(K: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]
                      ) -> np.ndarray:
    """Pixel intrinsics of an image resized from ``src_size`` to ``dst_size`` (both (W, H)).

    With pixel centres at integers, a resize by ``s`` maps ``x -> (x + 0.5) s - 0.5`` (the
    sampling of ``cv2.resize`` and of ``F.interpolate(align_corners=False)``), so
    ``fx' = s_x fx`` and ``cx' = (cx + 0.5) s_x - 0.5`` (and the same for y).

    Args:
        K: (3, 3) or (4, 4) (or (..., 3, 3)) pixel intrinsics.

    Returns:
        the same shape, float64 (float32 inputs stay float32).
    """
    K = np.asarray(K)
    out = K.astype(np.float64 if K.dtype != np.float32 else np.float32, copy=True)
    sx = dst_size[0] / src_size[0]
    sy = dst_size[1] / src_size[1]
    out[..., 0, 0] *= sx
    out[..., 0, 1] *= sx
    out[..., 0, 2] = (out[..., 0, 2] + 0.5) * sx - 0.5
    out[..., 1, 1] *= sy
    out[..., 1, 2] = (out[..., 1, 2] + 0.5) * sy - 0.5
    return out


def read_matrix_txt(path: str | os.PathLike[str]) -> np.ndarray:
    """A 4x4 matrix written one row per line (ScanNet's exporter, ``%f``; ``-inf`` allowed)."""
    path = Path(path)
    try:
        rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        m = np.asarray([[float(t) for t in r] for r in rows], np.float64)
    except OSError as e:
        raise FrameError(path, f'cannot read ({e.strerror or e})') from e
    except ValueError as e:
        raise FrameError(path, f'not a numeric matrix ({e})') from e
    if m.shape != (4, 4):
        raise FrameError(path, f'expected a 4x4 matrix, got {m.shape[0]} rows of '
                               f'{[len(r) for r in rows]} values')
    return m


def _k3(K: np.ndarray) -> np.ndarray:
    return np.asarray(K, np.float64)[:3, :3].copy()


# ------------------------------------------------------------------------------------------------
# frame sources


class FrameSource:
    """RGB-D frames of one scan. Subclasses fill the attributes and implement the methods.

    Attributes:
        path: the ``.sens`` file or the exported folder.
        kind: ``'sens'`` or ``'exported'``.
        intrinsic_color, intrinsic_depth: (3, 3) float64 pixel intrinsics.
        color_size, depth_size: ``(width, height)``.
        depth_shift: stored depth units per metre.
    """
    path: Path
    kind: str
    intrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    color_size: tuple[int, int]
    depth_size: tuple[int, int]
    depth_shift: float

    def index(self) -> list[tuple[int, np.ndarray]]:
        """``(frame number, camera_to_world (4, 4))`` of every frame, in order."""
        raise NotImplementedError

    def load(self, frame_id: int) -> tuple[np.ndarray, bytes | None, np.ndarray]:
        """``(colour (Hc, Wc, 3) uint8 RGB, its JPEG bytes or None, depth (Hd, Wd) uint16)``;
        raises :class:`FrameError` naming the file (and frame)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> 'FrameSource':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SensSource(FrameSource):
    """Frames of a ``.sens`` file, streamed (see :class:`~.sens.SensReader`)."""

    kind = 'sens'

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._reader = SensReader(self.path)
        except SensError as e:
            raise FrameError(self.path, e.reason) from e
        h = self._reader.header
        self.intrinsic_color = _k3(h.intrinsic_color)
        self.intrinsic_depth = _k3(h.intrinsic_depth)
        self.color_size, self.depth_size = h.color_size, h.depth_size
        self.depth_shift = h.depth_shift
        self._records: dict[int, SensRecord] = {}

    def index(self) -> list[tuple[int, np.ndarray]]:
        try:
            self._records = {r.index: r for r in self._reader.records()}
        except SensError as e:
            raise FrameError(self.path, e.reason if e.frame is None
                             else f'frame {e.frame}: {e.reason}') from e
        return [(i, r.camera_to_world.astype(np.float64)) for i, r in self._records.items()]

    def load(self, frame_id: int) -> tuple[np.ndarray, bytes | None, np.ndarray]:
        if not self._records:
            self.index()
        rec = self._records[frame_id]
        try:
            cbytes, dbytes = self._reader.read_bytes(rec)
            color = self._reader.decode_color(cbytes, rec.index)
            depth = self._reader.decode_depth(dbytes, rec.index)
        except SensError as e:
            raise FrameError(self.path, f'frame {frame_id}: {e.reason}') from e
        jpeg = cbytes if self._reader.header.color_compression == 'jpeg' else None
        return color, jpeg, depth

    def close(self) -> None:
        self._reader.close()


class ExportedSource(FrameSource):
    """Frames exported by ScanNet's ``reader.py``: ``color/N.jpg``, ``depth/N.png`` (uint16
    mm), ``pose/N.txt``, ``intrinsic/intrinsic_{color,depth}.txt``. Frame numbers come from
    ``pose/*.txt``."""

    kind = 'exported'

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        for sub in ('color', 'depth', 'pose', 'intrinsic'):
            if not (self.path / sub).is_dir():
                raise FrameError(self.path / sub, 'missing folder of an exported scan (needs '
                                                  'color/, depth/, pose/, intrinsic/)')
        self.intrinsic_color = _k3(read_matrix_txt(self.path / 'intrinsic' /
                                                   'intrinsic_color.txt'))
        self.intrinsic_depth = _k3(read_matrix_txt(self.path / 'intrinsic' /
                                                   'intrinsic_depth.txt'))
        self.depth_shift = DEPTH_SHIFT_MM
        self._ids = sorted(int(p.stem) for p in (self.path / 'pose').glob('*.txt')
                           if _INT_STEM.match(p.stem))
        if not self._ids:
            raise FrameError(self.path / 'pose', 'no <N>.txt pose files')
        first = self._ids[0]
        self.color_size = self._image_size(self._color_path(first))
        self.depth_size = self._image_size(self.path / 'depth' / f'{first}.png')

    def _color_path(self, frame_id: int) -> Path:
        p = self.path / 'color' / f'{frame_id}.jpg'
        return p if p.exists() else self.path / 'color' / f'{frame_id}.png'

    @staticmethod
    def _image_size(path: Path) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as im:  # reads the header only
                return im.size
        except FileNotFoundError as e:
            raise FrameError(path, 'missing file') from e
        except (OSError, UnidentifiedImageError) as e:
            raise FrameError(path, f'unreadable image ({e})') from e

    def index(self) -> list[tuple[int, np.ndarray]]:
        out = []
        for i in self._ids:
            p = self.path / 'pose' / f'{i}.txt'
            try:
                out.append((i, read_matrix_txt(p)))
            except FrameError:  # an unreadable pose makes the frame invalid (never sampled)
                out.append((i, np.full((4, 4), np.nan)))
        return out

    def load(self, frame_id: int) -> tuple[np.ndarray, bytes | None, np.ndarray]:
        cpath = self._color_path(frame_id)
        dpath = self.path / 'depth' / f'{frame_id}.png'
        try:
            cbytes = cpath.read_bytes()
            dbytes = dpath.read_bytes()
        except OSError as e:
            raise FrameError(e.filename or cpath, f'frame {frame_id}: cannot read '
                                                  f'({e.strerror or e})') from e
        bgr = cv2.imdecode(np.frombuffer(cbytes, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FrameError(cpath, f'frame {frame_id}: corrupt colour image')
        depth = cv2.imdecode(np.frombuffer(dbytes, np.uint8), cv2.IMREAD_UNCHANGED)
        if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
            what = 'undecodable' if depth is None else f'{depth.dtype} {depth.shape}'
            raise FrameError(dpath, f'frame {frame_id}: depth must be a one-channel uint16 PNG '
                                    f'(millimetres), got {what}')
        if (bgr.shape[1], bgr.shape[0]) != self.color_size:
            raise FrameError(cpath, f'frame {frame_id}: colour is {bgr.shape[1]}x{bgr.shape[0]}'
                                    f', frame {self._ids[0]} is {self.color_size[0]}x'
                                    f'{self.color_size[1]}')
        if (depth.shape[1], depth.shape[0]) != self.depth_size:
            raise FrameError(dpath, f'frame {frame_id}: depth is {depth.shape[1]}x'
                                    f'{depth.shape[0]}, frame {self._ids[0]} is '
                                    f'{self.depth_size[0]}x{self.depth_size[1]}')
        jpeg = cbytes if cpath.suffix == '.jpg' else None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), jpeg, depth


def open_frame_source(path: str | os.PathLike[str]) -> FrameSource:
    """:class:`SensSource` for a ``.sens`` file, :class:`ExportedSource` for a folder."""
    path = Path(path)
    if path.is_dir():
        return ExportedSource(path)
    if not path.exists():
        raise FrameError(path, 'missing file')
    return SensSource(path)


def find_frame_source(scene_dir: str | os.PathLike[str], scene_id: str,
                      frames_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a scan's frames are: ``frames_dir/<id>/`` (exported), ``<scene_dir>/<id>.sens``,
    or ``<scene_dir>/`` holding exported ``color/ depth/ pose/ intrinsic/``, in that order."""
    scene_dir = Path(scene_dir)
    if frames_dir is not None and (Path(frames_dir) / scene_id).is_dir():
        return Path(frames_dir) / scene_id
    sens = scene_dir / f'{scene_id}.sens'
    if sens.is_file():
        return sens
    if all((scene_dir / s).is_dir() for s in ('color', 'depth', 'pose', 'intrinsic')):
        return scene_dir
    extra = f', nor {Path(frames_dir) / scene_id}/' if frames_dir is not None else ''
    raise FrameError(sens, 'missing file (needed for --frames-every; no exported color/ depth/ '
                           f'pose/ intrinsic/ folders in {scene_dir} either{extra})')


def select_frames(index: Sequence[tuple[int, np.ndarray]], every: int) -> list[int]:
    """Frame numbers of every ``every``-th frame among those with a valid pose."""
    if every < 1:
        raise ValueError(f'every must be >= 1, got {every}')
    valid = [i for i, pose in index if pose_is_valid(pose)]
    return valid[::every]


# ------------------------------------------------------------------------------------------------
# writing frames/


@dataclass
class FramesResult:
    """What :func:`write_frames` wrote: frame count and per-frame warnings (skipped frames)."""
    frames: int
    source_frames: int
    valid_frames: int
    warnings: list[str] = field(default_factory=list)


def _out_sizes(src: FrameSource, size: str | tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int]]:
    if size == 'depth':
        return src.depth_size, src.depth_size
    if size == 'native':
        return src.color_size, src.depth_size
    return (int(size[0]), int(size[1])), (int(size[0]), int(size[1]))


def _resize_color(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    shrink = size[0] < rgb.shape[1] and size[1] < rgb.shape[0]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour with centre-aligned sampling (no mixing of depths across edges)."""
    if (depth.shape[1], depth.shape[0]) == size:
        return depth
    return cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST_EXACT)


def iter_selected(src: FrameSource, frame_ids: Sequence[int]
                  ) -> Iterator[tuple[int, tuple[np.ndarray, bytes | None, np.ndarray] | str]]:
    """``(frame id, loaded frame)`` or ``(frame id, warning text)`` for a frame that failed."""
    for fid in frame_ids:
        try:
            yield fid, src.load(fid)
        except FrameError as e:
            yield fid, str(e)


def write_frames(source: str | os.PathLike[str] | FrameSource, out_dir: str | os.PathLike[str],
                 options: FrameOptions | None = None) -> FramesResult:
    """Sample, resize and write a scan's frames into ``out_dir`` (created; not atomic by itself:
    the converter passes a temporary directory that it renames when everything is written).

    Args:
        source: a ``.sens`` file, an exported folder, or an open :class:`FrameSource`.
        out_dir: the ``frames/`` directory to fill (see the module docstring).
        options: :class:`FrameOptions` (every-k, output size, JPEG quality).

    Returns:
        :class:`FramesResult`; frames that cannot be decoded are skipped with a warning.

    Raises:
        FrameError: the source is unusable (bad header, truncated index) or no frame survived.
    """
    opts = options or FrameOptions()
    src = source if isinstance(source, FrameSource) else open_frame_source(source)
    try:
        return _write_frames(src, Path(out_dir), opts)
    finally:
        if not isinstance(source, FrameSource):
            src.close()


def _write_frames(src: FrameSource, out: Path, opts: FrameOptions) -> FramesResult:
    index = src.index()
    poses = dict(index)
    chosen = select_frames(index, int(opts.every))
    n_valid = sum(pose_is_valid(p) for _, p in index)
    if not chosen:
        raise FrameError(src.path, f'no frame with a valid pose among {len(index)} frames')
    color_size, depth_size = _out_sizes(src, opts.size)
    K_color = resize_intrinsics(src.intrinsic_color, src.color_size, color_size)
    K_depth = resize_intrinsics(src.intrinsic_depth, src.depth_size, depth_size)
    (out / 'color').mkdir(parents=True, exist_ok=True)
    (out / 'depth').mkdir(parents=True, exist_ok=True)
    scale = DEPTH_SHIFT_MM / src.depth_shift
    kept: list[int] = []
    warnings: list[str] = []
    for fid, loaded in iter_selected(src, chosen):
        if isinstance(loaded, str):
            warnings.append(f'skipped {loaded}')
            continue
        rgb, jpeg, depth = loaded
        if jpeg is not None and (rgb.shape[1], rgb.shape[0]) == color_size:
            cbytes = jpeg  # copy the source JPEG: no second lossy encoding
        else:
            ok, buf = cv2.imencode('.jpg', _resize_color(rgb, color_size)[..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, int(opts.jpeg_quality)])
            cbytes = buf.tobytes()
        if scale != 1.0:
            depth = np.clip(np.rint(depth.astype(np.float64) * scale), 0, 65535).astype(np.uint16)
        ok, dbuf = cv2.imencode('.png', _resize_depth(depth, depth_size))
        (out / 'color' / f'{fid:06d}.jpg').write_bytes(cbytes)
        (out / 'depth' / f'{fid:06d}.png').write_bytes(dbuf.tobytes())
        kept.append(fid)
    if not kept:
        raise FrameError(src.path, f'none of the {len(chosen)} sampled frames could be read '
                                   f'(first problem: {warnings[0][8:] if warnings else "?"})')
    np.save(out / 'poses.npy', np.stack([poses[i] for i in kept]).astype(np.float32),
            allow_pickle=False)
    np.save(out / 'frame_ids.npy', np.asarray(kept, np.int64), allow_pickle=False)
    meta = {
        'format': FRAMES_FORMAT,
        'num_frames': len(kept),
        'color_size': list(color_size), 'depth_size': list(depth_size),
        'intrinsic_color': K_color.round(6).tolist(), 'intrinsic_depth': K_depth.round(6).tolist(),
        'depth_unit': 'millimetre (uint16 PNG, 0 = invalid)',
        'pose': 'camera-to-world (OpenCV camera: x right, y down, z forward) in the raw scan '
                'frame of coord.npy',
        'options': opts.describe(),
        'source': {'kind': src.kind, 'path': str(src.path), 'frames': len(index),
                   'valid_poses': int(n_valid), 'color_size': list(src.color_size),
                   'depth_size': list(src.depth_size), 'depth_shift': src.depth_shift},
        'skipped': warnings,
    }
    (out / 'meta.json').write_text(json.dumps(meta, indent=1) + '\n')
    return FramesResult(frames=len(kept), source_frames=len(index), valid_frames=int(n_valid),
                        warnings=warnings)
