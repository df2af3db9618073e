"""Reader and writer of ScanNet's ``.sens`` RGB-D stream format (version 4).

The layout follows ScanNet's ``SensorData`` (github.com/ScanNet/ScanNet,
``SensReader/python/SensorData.py`` and ``SensReader/src/sensorData.h``); this is an
independent implementation. All numbers are little-endian::

    header   uint32 version (= 4)
             uint64 strlen, strlen bytes sensor_name
             float32[16] intrinsic_color, extrinsic_color, intrinsic_depth, extrinsic_depth
                         (row-major 4x4 each)
             int32  color_compression   (-1 unknown, 0 raw, 1 png, 2 jpeg)
             int32  depth_compression   (-1 unknown, 0 raw_ushort, 1 zlib_ushort, 2 occi_ushort)
             uint32 color_width, color_height, depth_width, depth_height
             float32 depth_shift        (depth value / depth_shift = metres; 1000 -> mm)
             uint64 num_frames
    frame    float32[16] camera_to_world (row-major; -inf everywhere = invalid pose)
             uint64 timestamp_color, timestamp_depth   (microseconds)
             uint64 color_size_bytes, depth_size_bytes
             color_size_bytes bytes (JPEG), depth_size_bytes bytes (zlib of uint16 H x W)
    trailer  uint64 num_imu_frames, then 128 bytes per IMU frame (the C++ writer appends it;
             the Python reader ignores it; :class:`SensWriter` writes 0 IMU frames)

:class:`SensReader` streams: it reads the header once, :meth:`SensReader.records` walks the
frame headers seeking past the image bytes (cheap even for multi-GB files), and
:meth:`SensReader.read` loads one frame's bytes on demand. Every problem raises
:class:`SensError` naming the file (and the frame index when there is one).
"""
from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Iterator

import cv2
import numpy as np

from geo3d.utils.io import fsync_dir, tmp_name

__all__ = ['SENS_VERSION', 'COLOR_COMPRESSION', 'DEPTH_COMPRESSION', 'SensError', 'SensHeader',
           'SensRecord', 'SensFrame', 'SensReader', 'SensWriter', 'read_sens_header',
           'pose_is_valid', 'encode_color', 'encode_depth']

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: 'unknown', 0: 'raw', 1: 'png', 2: 'jpeg'}
DEPTH_COMPRESSION = {-1: 'unknown', 0: 'raw_ushort', 1: 'zlib_ushort', 2: 'occi_ushort'}
_COLOR_CODES = {v: k for k, v in COLOR_COMPRESSION.items()}
_DEPTH_CODES = {v: k for k, v in DEPTH_COMPRESSION.items()}

_MAT = struct.Struct('<16f')
_HEAD_FIXED = struct.Struct('<64fiiIIIIfQ')      # 4 matrices .. num_frames (after the name)
_FRAME_HEAD = struct.Struct('<16fQQQQ')          # pose, 2 timestamps, 2 sizes: 96 bytes
_MAX_NAME = 1 << 16                               # a sensor name longer than this is corrupt


class SensError(ValueError):
    """A ``.sens`` file is unreadable: ``path`` names it, ``frame`` the frame (or None)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, frame: int | None = None
                 ) -> None:
        where = f'{path}' if frame is None else f'{path}: frame {frame}'
        super().__init__(f'{where}: {reason}')
        self.path = str(path)
        self.frame = frame
        self.reason = reason

    def __reduce__(self) -> tuple:  # picklable across worker processes
        return (SensError, (self.path, self.reason, self.frame))


@dataclass
class SensHeader:
    """The header of a ``.sens`` file.

    Attributes:
        intrinsic_color, extrinsic_color, intrinsic_depth, extrinsic_depth: (4, 4) float32.
        color_compression, depth_compression: names from :data:`COLOR_COMPRESSION` /
            :data:`DEPTH_COMPRESSION` (``'jpeg'``, ``'zlib_ushort'`` in ScanNet).
        color_size, depth_size: ``(width, height)`` in pixels.
        depth_shift: stored depth value per metre (1000: millimetres).
        num_frames: number of RGB-D frames.
        frames_offset: byte offset of the first frame.
    """
    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str
    depth_compression: str
    color_size: tuple[int, int]
    depth_size: tuple[int, int]
    depth_shift: float
    num_frames: int
    version: int = SENS_VERSION
    frames_offset: int = 0


@dataclass
class SensRecord:
    """Where one frame lies in the file (no image bytes read).

    Attributes:
        index: frame number (0-based, file order).
        camera_to_world: (4, 4) float32 (all -inf for an invalid pose in ScanNet).
        timestamp_color, timestamp_depth: microseconds.
        color_offset: byte offset of the colour bytes; ``depth_offset`` follows them.
        color_bytes, depth_bytes: sizes of the compressed images.
    """
    index: int
    camera_to_world: np.ndarray
    timestamp_color: int
    timestamp_depth: int
    color_offset: int
    color_bytes: int
    depth_bytes: int

    @property
    def depth_offset(self) -> int:
        return self.color_offset + self.color_bytes

    @property
    def valid(self) -> bool:
        return pose_is_valid(self.camera_to_world)


@dataclass
class SensFrame:
    """One decoded frame: ``color`` (Hc, Wc, 3) uint8 RGB, ``depth`` (Hd, Wd) uint16 (raw
    units: value / ``depth_shift`` = metres, 0 = no measurement), ``camera_to_world`` (4, 4)."""
    index: int
    color: np.ndarray
    depth: np.ndarray
    camera_to_world: np.ndarray
    timestamp_color: int = 0
    timestamp_depth: int = 0


def pose_is_valid(camera_to_world: np.ndarray) -> bool:
    """True for a finite (4, 4) pose whose last row is ``[0, 0, 0, 1]`` (ScanNet marks frames
    whose tracking failed with -inf, some exports with NaN)."""
    m = np.asarray(camera_to_world, np.float64)
    return bool(m.shape == (4, 4) and np.isfinite(m).all()
                and np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), atol=1e-4))


# ------------------------------------------------------------------------------------------------
# reading


def _read_exact(f: BinaryIO, n: int, path: Path, what: str, frame: int | None = None) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise SensError(path, f'truncated file: expected {n} bytes of {what}, got {len(data)}',
                        frame)
    return data


def _read_header(f: BinaryIO, path: Path) -> SensHeader:
    (version,) = struct.unpack('<I', _read_exact(f, 4, path, 'version'))
    if version != SENS_VERSION:
        raise SensError(path, f'not a version-{SENS_VERSION} .sens file (version field is '
                              f'{version})')
    (strlen,) = struct.unpack('<Q', _read_exact(f, 8, path, 'sensor name length'))
    if strlen > _MAX_NAME:
        raise SensError(path, f'corrupt header: sensor name length {strlen}')
    name = _read_exact(f, strlen, path, 'sensor name').decode('utf-8', errors='replace')
    vals = _HEAD_FIXED.unpack(_read_exact(f, _HEAD_FIXED.size, path, 'header'))
    mats = [np.asarray(vals[16 * k:16 * (k + 1)], np.float32).reshape(4, 4) for k in range(4)]
    ccode, dcode, cw, ch, dw, dh, shift, num = vals[64:]
    if ccode not in COLOR_COMPRESSION or dcode not in DEPTH_COMPRESSION:
        raise SensError(path, f'corrupt header: unknown compression codes colour {ccode}, '
                              f'depth {dcode}')
    if min(cw, ch, dw, dh) == 0:
        raise SensError(path, f'corrupt header: image sizes colour {cw}x{ch}, depth {dw}x{dh}')
    if not (np.isfinite(shift) and shift > 0):
        raise SensError(path, f'corrupt header: depth_shift {shift}')
    return SensHeader(sensor_name=name, intrinsic_color=mats[0], extrinsic_color=mats[1],
                      intrinsic_depth=mats[2], extrinsic_depth=mats[3],
                      color_compression=COLOR_COMPRESSION[ccode],
                      depth_compression=DEPTH_COMPRESSION[dcode], color_size=(cw, ch),
                      depth_size=(dw, dh), depth_shift=float(shift), num_frames=int(num),
                      version=version, frames_offset=f.tell())


def read_sens_header(path: str | os.PathLike[str]) -> SensHeader:
    """Read only the header of ``path``; raises :class:`SensError`."""
    with SensReader(path) as r:
        return r.header


class SensReader:
    """Streaming reader of one ``.sens`` file (a context manager; also closes on ``close()``).

    Example::

        with SensReader('scene0000_00.sens') as sens:
            records = list(sens.records())          # poses of every frame, no images read
            frame = sens.read(records[10])          # decode one frame
            for frame in sens:                      # or decode all, one at a time
                ...

    Raises:
        SensError: on open, for a missing file or a bad header; later, naming the frame.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, 'rb')
        except OSError as e:
            raise SensError(self.path, f'cannot open ({e.strerror or e})') from e
        try:
            self._size = os.fstat(self._f.fileno()).st_size
            self.header = _read_header(self._f, self.path)
        except BaseException:
            self._f.close()
            raise

    # -- context manager
    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> 'SensReader':
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __len__(self) -> int:
        return self.header.num_frames

    # -- frame index
    def records(self) -> Iterator[SensRecord]:
        """Yield every frame's :class:`SensRecord` in file order, seeking past the images."""
        pos = self.header.frames_offset
        for i in range(self.header.num_frames):
            self._f.seek(pos)
            vals = _FRAME_HEAD.unpack(_read_exact(self._f, _FRAME_HEAD.size, self.path,
                                                  'frame header', i))
            pose = np.asarray(vals[:16], np.float32).reshape(4, 4)
            tc, td, nc, nd = vals[16:]
            start = pos + _FRAME_HEAD.size
            end = start + nc + nd
            if end > self._size:
                raise SensError(self.path, f'truncated file: frame needs bytes up to {end} '
                                           f'(colour {nc} + depth {nd}), file has {self._size}',
                                i)
            yield SensRecord(index=i, camera_to_world=pose, timestamp_color=int(tc),
                             timestamp_depth=int(td), color_offset=start, color_bytes=int(nc),
                             depth_bytes=int(nd))
            pos = end

    def read_bytes(self, record: SensRecord) -> tuple[bytes, bytes]:
        """The compressed (colour, depth) bytes of ``record``."""
        self._f.seek(record.color_offset)
        color = _read_exact(self._f, record.color_bytes, self.path, 'colour data', record.index)
        depth = _read_exact(self._f, record.depth_bytes, self.path, 'depth data', record.index)
        return color, depth

    def decode_color(self, data: bytes, index: int | None = None) -> np.ndarray:
        """Compressed colour bytes -> (Hc, Wc, 3) uint8 RGB (checked against the header)."""
        w, h = self.header.color_size
        kind = self.header.color_compression
        if kind == 'raw':
            if len(data) != w * h * 3:
                raise SensError(self.path, f'raw colour has {len(data)} bytes, expected '
                                           f'{w * h * 3} for {w}x{h}x3', index)
            return np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()
        if kind not in ('jpeg', 'png'):
            raise SensError(self.path, f'colour compression {kind!r} is not supported', index)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise SensError(self.path, f'corrupt {kind.upper()} colour image '
                                       f'({len(data)} bytes)', index)
        if img.shape[:2] != (h, w):
            raise SensError(self.path, f'colour image is {img.shape[1]}x{img.shape[0]}, header '
                                       f'says {w}x{h}', index)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def decode_depth(self, data: bytes, index: int | None = None) -> np.ndarray:
        """Compressed depth bytes -> (Hd, Wd) uint16 in raw units (/ depth_shift = metres)."""
        w, h = self.header.depth_size
        kind = self.header.depth_compression
        if kind == 'zlib_ushort':
            try:
                data = zlib.decompress(data)
            except zlib.error as e:
                raise SensError(self.path, f'corrupt zlib depth data ({e})', index) from e
        elif kind != 'raw_ushort':
            raise SensError(self.path, f'depth compression {kind!r} is not supported', index)
        if len(data) != w * h * 2:
            raise SensError(self.path, f'depth has {len(data)} bytes, expected {w * h * 2} for '
                                       f'{w}x{h} uint16', index)
        return np.frombuffer(data, '<u2').reshape(h, w).astype(np.uint16)

    def read(self, record: SensRecord) -> SensFrame:
        """Load and decode the frame of ``record``."""
        cbytes, dbytes = self.read_bytes(record)
        return SensFrame(index=record.index, color=self.decode_color(cbytes, record.index),
                         depth=self.decode_depth(dbytes, record.index),
                         camera_to_world=record.camera_to_world,
                         timestamp_color=record.timestamp_color,
                         timestamp_depth=record.timestamp_depth)

    def __iter__(self) -> Iterator[SensFrame]:
        """Decode every frame in order (one in memory at a time)."""
        for rec in self.records():  # records() seeks before each header, so reads may interleave
            yield self.read(rec)


# ------------------------------------------------------------------------------------------------
# writing


def encode_color(rgb: np.ndarray, compression: str = 'jpeg', quality: int = 95) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG / PNG / raw bytes (OpenCV's codecs)."""
    rgb = np.ascontiguousarray(rgb, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'colour must be (H, W, 3) uint8, got shape {rgb.shape}')
    if compression == 'raw':
        return rgb.tobytes()
    if compression == 'jpeg':
        ok, buf = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif compression == 'png':
        ok, buf = cv2.imencode('.png', rgb[..., ::-1])
    else:
        raise ValueError(f'unsupported colour compression {compression!r}')
    if not ok:
        raise ValueError(f'OpenCV could not encode a {rgb.shape} image as {compression}')
    return buf.tobytes()


def encode_depth(depth: np.ndarray, compression: str = 'zlib_ushort') -> bytes:
    """(H, W) uint16 depth -> zlib-compressed (or raw) little-endian bytes."""
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f'depth must be (H, W) uint16, got {depth.dtype} {depth.shape}')
    raw = np.ascontiguousarray(depth, '<u2').tobytes()
    if compression == 'raw_ushort':
        return raw
    if compression == 'zlib_ushort':
        return zlib.compress(raw)
    raise ValueError(f'unsupported depth compression {compression!r}')


def _mat_bytes(m: np.ndarray | None, name: str) -> bytes:
    m = np.eye(4, dtype=np.float32) if m is None else np.asarray(m, np.float32)
    if m.shape == (3, 3):
        m4 = np.eye(4, dtype=np.float32)
        m4[:3, :3] = m
        m = m4
    if m.shape != (4, 4):
        raise ValueError(f'{name} must be (4, 4) or (3, 3), got {m.shape}')
    return _MAT.pack(*m.reshape(-1))


class SensWriter:
    """Write a ``.sens`` file frame by frame, atomically (temp file + rename on ``close``).

    Example::

        with SensWriter(path, color_size=(160, 120), depth_size=(160, 120),
                        intrinsic_color=K, intrinsic_depth=K) as w:
            for rgb, depth_mm, pose in frames:
                w.add(rgb, depth_mm, pose)

    Args:
        path: output file.
        color_size, depth_size: ``(width, height)``.
        intrinsic_color, intrinsic_depth: (3, 3) or (4, 4) pixel intrinsics.
        extrinsic_color, extrinsic_depth: (4, 4); identity when None.
        depth_shift: depth units per metre (1000: the depth images are millimetres).
        color_compression: ``'jpeg'`` (ScanNet), ``'png'`` or ``'raw'``.
        depth_compression: ``'zlib_ushort'`` (ScanNet) or ``'raw_ushort'``.
        jpeg_quality: JPEG quality of :meth:`add`.
        sensor_name: free text stored in the header.
    """

    def __init__(self, path: str | os.PathLike[str], color_size: tuple[int, int],
                 depth_size: tuple[int, int], intrinsic_color: np.ndarray,
                 intrinsic_depth: np.ndarray, extrinsic_color: np.ndarray | None = None,
                 extrinsic_depth: np.ndarray | None = None, depth_shift: float = 1000.0,
                 color_compression: str = 'jpeg', depth_compression: str = 'zlib_ushort',
                 jpeg_quality: int = 95, sensor_name: str = 'StructureSensor') -> None:
        if color_compression not in ('jpeg', 'png', 'raw'):
            raise ValueError(f'unsupported colour compression {color_compression!r}')
        if depth_compression not in ('zlib_ushort', 'raw_ushort'):
            raise ValueError(f'unsupported depth compression {depth_compression!r}')
        if min(*color_size, *depth_size) <= 0 or not depth_shift > 0:
            raise ValueError(f'need positive sizes and depth_shift, got colour {color_size}, '
                             f'depth {depth_size}, depth_shift {depth_shift}')
        self.path = Path(path)
        self.color_size = (int(color_size[0]), int(color_size[1]))
        self.depth_size = (int(depth_size[0]), int(depth_size[1]))
        self.color_compression = color_compression
        self.depth_compression = depth_compression
        self.jpeg_quality = jpeg_quality
        self.num_frames = 0
        name = sensor_name.encode('utf-8')
        head = (struct.pack('<IQ', SENS_VERSION, len(name)) + name
                + _mat_bytes(intrinsic_color, 'intrinsic_color')
                + _mat_bytes(extrinsic_color, 'extrinsic_color')
                + _mat_bytes(intrinsic_depth, 'intrinsic_depth')
                + _mat_bytes(extrinsic_depth, 'extrinsic_depth')
                + struct.pack('<iiIIIIf', _COLOR_CODES[color_compression],
                              _DEPTH_CODES[depth_compression], *self.color_size,
                              *self.depth_size, float(depth_shift)))
        self._tmp = tmp_name(self.path)
        self._f: BinaryIO | None = open(self._tmp, 'wb')
        self._f.write(head)
        self._count_pos = self._f.tell()
        self._f.write(struct.pack('<Q', 0))  # patched in close()

    def add(self, color: np.ndarray, depth: np.ndarray, camera_to_world: np.ndarray,
            timestamp_color: int | None = None, timestamp_depth: int | None = None) -> None:
        """Append a frame: ``color`` (Hc, Wc, 3) uint8 RGB, ``depth`` (Hd, Wd) uint16 raw units,
        ``camera_to_world`` (4, 4) (pass all -inf for an invalid pose, as ScanNet does)."""
        w, h = self.color_size
        if np.asarray(color).shape != (h, w, 3):
            raise ValueError(f'frame {self.num_frames}: colour shape {np.asarray(color).shape}, '
                             f'expected {(h, w, 3)}')
        dw, dh = self.depth_size
        if np.asarray(depth).shape != (dh, dw):
            raise ValueError(f'frame {self.num_frames}: depth shape {np.asarray(depth).shape}, '
                             f'expected {(dh, dw)}')
        self.add_encoded(encode_color(color, self.color_compression, self.jpeg_quality),
                         encode_depth(depth, self.depth_compression), camera_to_world,
                         timestamp_color, timestamp_depth)

    def add_encoded(self, color_bytes: bytes, depth_bytes: bytes, camera_to_world: np.ndarray,
                    timestamp_color: int | None = None, timestamp_depth: int | None = None
                    ) -> None:
        """Append a frame from already-compressed bytes (no checks of their content)."""
        if self._f is None:
            raise ValueError(f'{self.path}: writer is closed')
        pose = np.asarray(camera_to_world, np.float32)
        if pose.shape != (4, 4):
            raise ValueError(f'camera_to_world must be (4, 4), got {pose.shape}')
        t = self.num_frames * 33333  # ~30 Hz in microseconds
        self._f.write(_FRAME_HEAD.pack(*pose.reshape(-1),
                                       t if timestamp_color is None else timestamp_color,
                                       t if timestamp_depth is None else timestamp_depth,
                                       len(color_bytes), len(depth_bytes)))
        self._f.write(color_bytes)
        self._f.write(depth_bytes)
        self.num_frames += 1

    def close(self) -> None:
        """Write the IMU trailer and the frame count, then move the file into place."""
        if self._f is None:
            return
        f, self._f = self._f, None
        try:
            f.write(struct.pack('<Q', 0))  # no IMU frames
            f.seek(self._count_pos)
            f.write(struct.pack('<Q', self.num_frames))
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            f.close()
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Discard the partial file."""
        if self._f is not None:
            self._f.close()
            self._f = None
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> 'SensWriter':
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is None:
            self.close()
        else:
            self.abort()
