"""Tests for the ``.sens`` reader / writer (geo3d.converters.scannet.sens)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from geo3d.converters.scannet.sens import (SensError, SensReader, SensWriter, encode_color,
                                           pose_is_valid, read_sens_header)

CW, CH, DW, DH = 32, 24, 16, 12
K_COLOR = np.array([[30.0, 0, 15.5], [0, 29.0, 11.5], [0, 0, 1]])
K_DEPTH = np.array([[15.0, 0, 7.5], [0, 14.5, 5.5], [0, 0, 1]])
EXT_DEPTH = np.array([[1, 0, 0, 0.05], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)


def _frames(n: int = 3) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Smooth colour ramps (JPEG-friendly), depth with zeros, poses; frame 1 is invalid."""
    rng = np.random.default_rng(0)
    u, v = np.meshgrid(np.arange(CW), np.arange(CH))
    out = []
    for i in range(n):
        rgb = np.stack([u * 5 + 20 * i, v * 9, np.full_like(u, 90 + 50 * i)],
                       -1).astype(np.uint8)
        depth = rng.integers(0, 5000, (DH, DW)).astype(np.uint16)
        depth[0, :3] = 0
        pose = np.eye(4)
        pose[:3, 3] = (0.1 * i, -0.2, 1.5)
        pose[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
        if i == 1:
            pose = np.full((4, 4), -np.inf)
        out.append((rgb, depth, pose))
    return out


def _write(path: Path, frames: list, **kw) -> Path:
    with SensWriter(path, (CW, CH), (DW, DH), K_COLOR, K_DEPTH, extrinsic_depth=EXT_DEPTH,
                    sensor_name='test-sensor', **kw) as w:
        for k, (rgb, depth, pose) in enumerate(frames):
            w.add(rgb, depth, pose, timestamp_color=1000 * k, timestamp_depth=1000 * k + 7)
    return path


@pytest.fixture
def sens(tmp_path: Path) -> Path:
    return _write(tmp_path / 'scene0000_00.sens', _frames())


def test_round_trip(sens: Path) -> None:
    frames = _frames()
    with SensReader(sens) as r:
        h = r.header
        assert (h.version, h.sensor_name, h.num_frames, len(r)) == (4, 'test-sensor', 3, 3)
        assert (h.color_size, h.depth_size) == ((CW, CH), (DW, DH))
        assert (h.color_compression, h.depth_compression, h.depth_shift) == (
            'jpeg', 'zlib_ushort', 1000.0)
        np.testing.assert_array_equal(h.intrinsic_color[:3, :3], K_COLOR.astype(np.float32))
        np.testing.assert_array_equal(h.intrinsic_depth[:3, :3], K_DEPTH.astype(np.float32))
        np.testing.assert_array_equal(h.intrinsic_depth[3], [0, 0, 0, 1])
        np.testing.assert_array_equal(h.extrinsic_depth, EXT_DEPTH)
        np.testing.assert_array_equal(h.extrinsic_color, np.eye(4))
        read = list(r)
    for k, (fr, (rgb, depth, pose)) in enumerate(zip(read, frames)):
        assert fr.index == k and fr.color.shape == (CH, CW, 3) and fr.color.dtype == np.uint8
        assert np.abs(fr.color.astype(int) - rgb).mean() < 3.0      # JPEG at quality 95
        np.testing.assert_array_equal(fr.depth, depth)                # zlib: exact
        assert fr.depth.dtype == np.uint16
        np.testing.assert_array_equal(fr.camera_to_world, pose.astype(np.float32))
        assert (fr.timestamp_color, fr.timestamp_depth) == (1000 * k, 1000 * k + 7)
    assert np.isneginf(read[1].camera_to_world).all()
    assert [pose_is_valid(f.camera_to_world) for f in read] == [True, False, True]


def test_layout_matches_the_reference_byte_layout(sens: Path) -> None:
    """Parse the file with plain struct calls following ScanNet's SensorData.py field by field
    (an independent check of the writer, not using SensReader)."""
    data = sens.read_bytes()
    o = 0

    def take(fmt: str) -> tuple:
        nonlocal o
        vals = struct.unpack_from('<' + fmt, data, o)
        o += struct.calcsize('<' + fmt)
        return vals

    assert take('I') == (4,)
    (n,) = take('Q')
    assert data[o:o + n] == b'test-sensor'
    o += n
    mats = [np.asarray(take('16f')).reshape(4, 4) for _ in range(4)]
    np.testing.assert_allclose(mats[0][:3, :3], K_COLOR, rtol=1e-6)
    assert take('i') == (2,) and take('i') == (1,)           # JPEG, zlib_ushort
    assert take('IIII') == (CW, CH, DW, DH) and take('f') == (1000.0,) and take('Q') == (3,)
    frames = _frames()
    for k in range(3):
        pose = np.asarray(take('16f')).reshape(4, 4)
        np.testing.assert_array_equal(pose, frames[k][2].astype(np.float32))
        _, _, nc, nd = take('QQQQ')
        assert data[o:o + 2] == b'\xff\xd8'                      # JPEG start-of-image
        o += nc
        depth = np.frombuffer(zlib.decompress(data[o:o + nd]), '<u2').reshape(DH, DW)
        np.testing.assert_array_equal(depth, frames[k][1])
        o += nd
    assert take('Q') == (0,) and o == len(data)                 # IMU trailer, nothing after


def test_random_access_and_records(sens: Path) -> None:
    with SensReader(sens) as r:
        recs = list(r.records())
        assert [rec.valid for rec in recs] == [True, False, True]
        assert recs[1].color_offset > recs[0].depth_offset
        last = r.read(recs[2])
        first = r.read(recs[0])
        ref = list(r)
    np.testing.assert_array_equal(last.depth, ref[2].depth)
    np.testing.assert_array_equal(first.color, ref[0].color)


@pytest.mark.parametrize('compression', ['png', 'raw'])
def test_lossless_colour(tmp_path: Path, compression: str) -> None:
    frames = _frames(2)
    path = _write(tmp_path / 'x.sens', frames, color_compression=compression)
    with SensReader(path) as r:
        assert r.header.color_compression == compression
        for fr, (rgb, _, _) in zip(r, frames):
            np.testing.assert_array_equal(fr.color, rgb)


def test_truncated_in_a_frame_names_file_and_frame(sens: Path) -> None:
    with SensReader(sens) as r:
        recs = list(r.records())
    sens.write_bytes(sens.read_bytes()[:recs[2].color_offset + 10])
    with SensReader(sens) as r:
        with pytest.raises(SensError) as e:
            list(r.records())
    assert e.value.frame == 2 and str(sens) in str(e.value) and 'frame 2' in str(e.value)
    assert 'truncated' in str(e.value)
    # streaming: frames before the damage are still readable
    with SensReader(sens) as r:
        it = iter(r)
        assert next(it).index == 0 and next(it).index == 1
        with pytest.raises(SensError, match='frame 2'):
            next(it)


def test_truncated_header(sens: Path) -> None:
    sens.write_bytes(sens.read_bytes()[:40])
    with pytest.raises(SensError, match=f'{sens}: truncated file'):
        read_sens_header(sens)


def test_bad_version_and_missing_file(sens: Path, tmp_path: Path) -> None:
    data = bytearray(sens.read_bytes())
    data[0:4] = struct.pack('<I', 3)
    sens.write_bytes(bytes(data))
    with pytest.raises(SensError, match='version field is 3'):
        SensReader(sens)
    with pytest.raises(SensError, match=f'{tmp_path / "nope.sens"}: cannot open'):
        SensReader(tmp_path / 'nope.sens')


def test_corrupt_images_name_the_frame(sens: Path) -> None:
    with SensReader(sens) as r:
        recs = list(r.records())
    data = bytearray(sens.read_bytes())
    data[recs[0].color_offset:recs[0].color_offset + recs[0].color_bytes] = \
        b'\x00' * recs[0].color_bytes
    data[recs[2].depth_offset:recs[2].depth_offset + 4] = b'JUNK'
    sens.write_bytes(bytes(data))
    with SensReader(sens) as r:
        with pytest.raises(SensError, match=r'frame 0: corrupt JPEG'):
            r.read(recs[0])
        with pytest.raises(SensError, match=r'frame 2: corrupt zlib depth'):
            r.read(recs[2])
        r.read(recs[1])  # the untouched frame still decodes


def test_wrong_colour_size_is_reported(tmp_path: Path) -> None:
    path = tmp_path / 'x.sens'
    with SensWriter(path, (CW, CH), (DW, DH), K_COLOR, K_DEPTH) as w:
        w.add_encoded(encode_color(np.zeros((CH + 2, CW, 3), np.uint8)),
                      zlib.compress(np.zeros((DH, DW), '<u2').tobytes()), np.eye(4))
    with SensReader(path) as r:
        with pytest.raises(SensError, match=rf'frame 0: colour image is {CW}x{CH + 2}'):
            next(iter(r))


def test_writer_is_atomic_and_checks_shapes(tmp_path: Path) -> None:
    path = tmp_path / 'x.sens'
    frames = _frames(1)
    with pytest.raises(ValueError, match='depth shape'):
        with SensWriter(path, (CW, CH), (DW, DH), K_COLOR, K_DEPTH) as w:
            w.add(*frames[0])
            w.add(frames[0][0], np.zeros((DH + 1, DW), np.uint16), np.eye(4))
    assert list(tmp_path.iterdir()) == []          # neither the file nor a temp file
    with pytest.raises(ValueError, match='colour compression'):
        SensWriter(path, (CW, CH), (DW, DH), K_COLOR, K_DEPTH, color_compression='webp')
