"""PyAV video reading and atomic MP4 writing (geo3d.apis.video)."""
from __future__ import annotations

import numpy as np
import pytest

from geo3d.apis.video import VideoWriter, read_video, video_info


def frames(n: int, h: int = 48, w: int = 80) -> list[np.ndarray]:
    """Smooth frames (codec-friendly) whose mean brightness encodes the frame index."""
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([(xx * 3 + 20 * i) % 256, yy * 4 % 256, np.full_like(xx, 40 * i % 256)],
                     -1).astype(np.uint8) for i in range(n)]


def test_write_then_read_round_trip(tmp_path):
    path = tmp_path / 'v.mp4'
    src = frames(6)
    with VideoWriter(path, fps=12) as w:
        for f in src:
            w.write(f)
    assert w.frames_written == 6
    info = video_info(path)
    assert (info.width, info.height, info.fps) == (80, 48, 12)
    got = list(read_video(path))
    assert len(got) == 6
    for a, b in zip(got, src):
        assert a.shape == (48, 80, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 12  # lossy codec
    assert len(list(read_video(path, max_frames=2))) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temp left


def test_odd_sizes_are_padded(tmp_path):
    with VideoWriter(tmp_path / 'odd.mp4', fps=5) as w:
        for f in frames(2, 33, 51):
            w.write(f)
    info = video_info(tmp_path / 'odd.mp4')
    assert (info.height, info.width) == (34, 52)


def test_failure_leaves_no_file(tmp_path):
    path = tmp_path / 'bad.mp4'
    with pytest.raises(ValueError, match=r'frame 1 is \(40, 80\), the first was \(48, 80\)'):
        with VideoWriter(path, fps=5) as w:
            w.write(frames(1)[0])
            w.write(frames(1, 40, 80)[0])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r'must be uint8 \(H, W, 3\)'):
        VideoWriter(path).write(np.zeros((4, 4), np.uint8))


def test_reading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.mp4 does not exist'):
        video_info(tmp_path / 'missing.mp4')
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(b'not a video at all')
    with pytest.raises(ValueError, match='junk.mp4: not a readable video'):
        video_info(junk)
