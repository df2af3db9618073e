"""KITTI raw converter: calibration vs pykitti, velodyne projection vs independent references,
split lists, info files, gt_depths.npz, resumability and clear errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pykitti
import pytest

from geo3d.converters.kitti import (DriveError, InputError, convert, main,
                                    project_velodyne_to_depth, read_calib, read_split_file,
                                    scan_drive)
from geo3d.converters.kitti.velodyne import generate_depth_map
from tests.helpers.kitti_fixture import DATE, drive_folder, write_kitti_raw, write_velodyne

REPO = Path(__file__).resolve().parents[2]
D1, D2 = drive_folder(1), drive_folder(2)


@pytest.fixture
def raw(tmp_path: Path):
    return write_kitti_raw(tmp_path / 'raw')


def _convert(raw_root: Path, out: Path, **kw) -> object:
    kw.setdefault('num_val_drives', 0)
    return convert(raw_root, out, progress=False, verbose=False, **kw)


def slow_depth_map(points: np.ndarray, P: np.ndarray, h: int, w: int, use_x: bool = True
                   ) -> np.ndarray:
    """Obvious per-point loop: x >= 0, project, round - 1, bounds, smallest value per pixel."""
    best: dict[tuple[int, int], float] = {}
    for x, y, z, *_ in points.astype(np.float64):
        if x < 0:
            continue
        p = P @ np.array([x, y, z, 1.0])
        if p[2] <= 0:
            continue
        u, v = round(p[0] / p[2]) - 1, round(p[1] / p[2]) - 1  # round() is half-to-even too
        if 0 <= u < w and 0 <= v < h:
            val = x if use_x else p[2]
            best[(v, u)] = min(best.get((v, u), np.inf), val)
    out = np.zeros((h, w), np.float32)
    for (v, u), val in best.items():
        out[v, u] = max(val, 0)
    return out


# ------------------------------------------------------------------------------------------------
# calibration and projection

def test_calib_matches_pykitti(raw) -> None:
    kit = pykitti.raw(str(raw.root), DATE, '0001')  # the fixture is a valid pykitti drive
    assert len(kit) == raw.num_frames
    calib = read_calib(raw.root / DATE)
    assert calib.image_size[2] == (raw.width, raw.height)
    # pykitti measures it in the velodyne frame through the 6-digit (not exactly orthonormal) R
    np.testing.assert_allclose(calib.stereo_baseline(), kit.calib.b_rgb, rtol=1e-6)
    k = calib.normalized_intrinsics(2)
    np.testing.assert_allclose(k[0, :3] * raw.width, kit.calib.K_cam2[0], rtol=1e-12)
    np.testing.assert_allclose(k[1, :3] * raw.height, kit.calib.K_cam2[1], rtol=1e-12)
    np.testing.assert_allclose(calib.velo_to_cam, kit.calib.T_cam0_velo_unrect, rtol=1e-12)


@pytest.mark.parametrize('depth', ['velo_x', 'cam_z'])
def test_known_point_lands_on_expected_pixel(raw, depth: str) -> None:
    """Place points at chosen pixels with pykitti's K_cam2 / T_cam2_velo (an independent route
    to the same projection, up to P_rect_02's sub-millimetre t_y, t_z terms)."""
    kit = pykitti.raw(str(raw.root), DATE, '0001')
    K, T = kit.calib.K_cam2, kit.calib.T_cam2_velo
    P02 = kit.calib.P_rect_20
    calib = read_calib(raw.root / DATE)
    targets = [(3, 5, 4.0), (20, 80, 12.5), (31, 0, 30.0), (10, 47, 7.0)]  # (row, col, z)
    pts = []
    for row, col, z in targets:
        # rounded coordinate before the "-1" is col + 1; put the point at that pixel exactly
        x_cam2 = z * np.linalg.solve(K, [col + 1.0, row + 1.0, 1.0])
        pts.append((np.linalg.inv(T) @ np.append(x_cam2, 1.0))[:3])
    pts = np.array(pts)
    dmap = project_velodyne_to_depth(pts, calib.velo_to_image(2), raw.height, raw.width, depth)
    assert (dmap > 0).sum() == len(targets)
    for (row, col, z), p in zip(targets, pts):
        expect = p[0] if depth == 'velo_x' else z + P02[2, 3]  # P's t_z adds to the depth
        assert dmap[row, col] == pytest.approx(expect, rel=1e-6), (row, col)


def test_nearest_wins_and_filters(raw) -> None:
    calib = read_calib(raw.root / DATE)
    P = calib.velo_to_image(2)
    kit = pykitti.raw(str(raw.root), DATE, '0001')
    ray = np.linalg.inv(kit.calib.T_cam2_velo)
    on_ray = [(ray @ np.append(z * np.linalg.solve(kit.calib.K_cam2, [41.0, 11.0, 1.0]), 1))[:3]
              for z in (9.0, 3.0, 6.0)]
    behind = [[-5.0, 0.0, 0.0]]  # x < 0: dropped even though it would project
    far_left = [[5.0, 50.0, 0.0]]  # outside the image
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        pts = np.array([on_ray[i] for i in order] + behind + far_left)
        dmap = project_velodyne_to_depth(pts, P, raw.height, raw.width)
        assert (dmap > 0).sum() == 1
        assert dmap[10, 40] == pytest.approx(on_ray[1][0], rel=1e-6)  # the nearest point

    rng = np.random.default_rng(1)  # dense random cloud: many collisions
    pts = np.stack([rng.uniform(-3, 30, 3000), rng.uniform(-6, 6, 3000),
                    rng.uniform(-2, 1, 3000)], 1)
    for use_x, depth in ((True, 'velo_x'), (False, 'cam_z')):
        ours = project_velodyne_to_depth(pts, P, raw.height, raw.width, depth)
        ref = slow_depth_map(pts, P, raw.height, raw.width, use_x)
        assert (ref > 0).sum() > 300
        np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_projection_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match='points must be'):
        project_velodyne_to_depth(np.zeros((5, 2)), np.zeros((3, 4)), 4, 4)
    with pytest.raises(ValueError, match='velo_to_image must be'):
        project_velodyne_to_depth(np.zeros((5, 4)), np.zeros((4, 4)), 4, 4)
    with pytest.raises(ValueError, match='depth must be one of'):
        project_velodyne_to_depth(np.zeros((5, 4)), np.zeros((3, 4)), 4, 4, 'range')


# ------------------------------------------------------------------------------------------------
# end to end (auto split)

def test_auto_split_end_to_end(raw, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    rep = _convert(raw.root, out, workers=2)
    assert not rep.failed and rep.scanned == 2 and rep.drives['test'] == [D2]
    sp = out / 'splits' / 'auto'
    train = (sp / 'train_files.txt').read_text().splitlines()
    # drive 1 held in, frames 1..4 have both neighbours (offsets -1, 1), both cameras
    assert train == [f'{D1} {f} {s}' for f in range(1, 5) for s in 'lr']
    test = (sp / 'test_files.txt').read_text().splitlines()
    assert test == [f'{D2} {f:010d} l' for f in range(6)]
    assert not (sp / 'val_files.txt').exists()
    assert [ln.format() for ln in read_split_file(sp / 'train_files.txt')] == train

    info = json.loads((sp / 'train_info.json').read_text())
    kit = pykitti.raw(str(raw.root), DATE, '0001')
    assert info['raw_root'] == str(raw.root.resolve()) and len(info['frames']) == len(train)
    fr = info['frames'][1]  # "D1 1 r"
    assert (fr['frame_index'], fr['side'], fr['cam']) == (1, 'r', 3)
    assert fr['image'] == f'{D1}/image_03/data/0000000001.png'
    assert fr['stereo_image'] == f'{D1}/image_02/data/0000000001.png'
    assert (raw.root / fr['image']).is_file()
    assert (fr['width'], fr['height']) == (raw.width, raw.height)
    fx, fy, cx, cy = fr['intrinsics']
    np.testing.assert_allclose([fx * raw.width, fy * raw.height, cx * raw.width,
                                cy * raw.height],
                               kit.calib.K_cam3[[0, 1, 0, 1], [0, 1, 2, 2]], rtol=1e-12)
    assert fr["stereo_baseline"] == pytest.approx(kit.calib.b_rgb, rel=1e-6)

    with np.load(sp / 'gt_depths.npz', allow_pickle=True) as z:
        data, lines, intr = z['data'], z['lines'].tolist(), z['intrinsics']
    assert data.dtype == object and len(data) == 6 and lines == test
    assert intr.shape == (6, 4, 4)
    P = read_calib(raw.root / DATE).velo_to_image(2)
    for f in range(6):
        assert data[f].dtype == np.float32 and data[f].shape == (raw.height, raw.width)
        ref = slow_depth_map(raw.points[(D2, f)], P, raw.height, raw.width)
        assert (ref > 0).sum() > 20
        np.testing.assert_allclose(data[f], ref, rtol=1e-6)


def test_resume_skips_and_rebuilds(raw, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    _convert(raw.root, out)
    gt = out / 'splits' / 'auto' / 'gt_depths.npz'
    mtime = gt.stat().st_mtime_ns
    rep = _convert(raw.root, out)
    assert (rep.scanned, rep.skipped, rep.gt_exported, rep.gt_skipped) == (0, 2, 0, 1)
    assert rep.files_written == 0 and rep.files_unchanged == 4
    assert gt.stat().st_mtime_ns == mtime

    gt.unlink()
    (out / 'drives' / f'{D1}.json').unlink()
    rep = _convert(raw.root, out)
    assert (rep.scanned, rep.skipped, rep.gt_exported) == (1, 1, 1)
    assert gt.is_file()

    # a changed drive (an image rewritten with other bytes) is rescanned
    from PIL import Image
    Image.new('RGB', (raw.width, raw.height), (1, 2, 3)).save(raw.image(D2, 0, 2),
                                                              compress_level=0)
    rep = _convert(raw.root, out)
    assert (rep.scanned, rep.skipped) == (1, 1)

    # a different test list invalidates the ground truth file
    rep = _convert(raw.root, out, gt_depth='cam_z')
    assert rep.gt_exported == 1


def test_corrupt_velodyne_auto_skips_drive(raw, tmp_path: Path) -> None:
    bad = raw.velodyne(D1, 3)
    bad.write_bytes(b'\x00' * 30)
    out = tmp_path / 'out'
    rep = _convert(raw.root, out, num_test_drives=0)
    assert [(d, f) for d, f, _ in rep.failed] == [(D1, str(bad))]
    assert 'corrupt velodyne scan: 30 bytes' in rep.failed[0][2]
    assert rep.drives['train'] == [D2]  # the bad drive is left out, the rest converted
    assert (out / 'failed.txt').read_text().startswith(f'{D1}: {bad}: corrupt velodyne')
    assert main(['--root', str(raw.root), '--out', str(out), '--no-progress',
                 '--val-drives', '0', '--test-drives', '0']) == 1


def test_corrupt_image_and_calib_errors_name_the_file(raw, tmp_path: Path) -> None:
    img = raw.image(D2, 4, 3)
    img.write_bytes(b'not a png')
    with pytest.raises(DriveError, match='corrupt image') as e:
        scan_drive(raw.root, D2)
    assert e.value.path == str(img)

    missing = raw.image(D1, 2, 3)
    missing.unlink()
    with pytest.raises(DriveError, match='missing frame') as e:
        scan_drive(raw.root, D1)
    assert e.value.path == str(missing)

    c2c = raw.root / DATE / 'calib_cam_to_cam.txt'
    text = c2c.read_text()
    c2c.write_text('\n'.join(ln for ln in text.splitlines() if not ln.startswith('P_rect_02'))
                   + '\n')
    with pytest.raises(DriveError, match="missing calibration key 'P_rect_02'") as e:
        read_calib(raw.root / DATE)
    assert e.value.path == str(c2c)
    c2c.write_text(text.replace('S_rect_02: ', 'S_rect_02: 5 ', 1))
    with pytest.raises(DriveError, match="'S_rect_02' has 3 values, expected 2"):
        read_calib(raw.root / DATE)
    c2c.write_text(text + '\n')  # a blank line (pykitti's parser cannot take it)
    with pytest.raises(DriveError, match=r'line \d+ has no "key: values"'):
        read_calib(raw.root / DATE)


# ------------------------------------------------------------------------------------------------
# named (Monodepth2-format) splits

def _write_split(tmp_path: Path, name: str, subsets: dict[str, list[str]]) -> Path:
    d = tmp_path / 'splits' / name
    d.mkdir(parents=True)
    for subset, lines in subsets.items():
        (d / f'{subset}_files.txt').write_text(''.join(ln + '\n' for ln in lines))
    return tmp_path / 'splits'


def test_named_split(raw, tmp_path: Path) -> None:
    sd = _write_split(tmp_path, 'mini_eigen', {
        'train': [f'{D1} 1 l', f'{D1} 2 r', f'{D2} 4 l'], 'test': [f'{D2} 0000000003 l']})
    out = tmp_path / 'out'
    rep = _convert(raw.root, out, split='mini_eigen', split_dir=sd)
    assert not rep.failed and rep.subsets == {'train': 3, 'test': 1}
    sp = out / 'splits' / 'mini_eigen'
    assert (sp / 'train_files.txt').read_text().splitlines() == [f'{D1} 1 l', f'{D1} 2 r',
                                                                  f'{D2} 4 l']
    with np.load(sp / 'gt_depths.npz', allow_pickle=True) as z:
        P = read_calib(raw.root / DATE).velo_to_image(2)
        np.testing.assert_allclose(z['data'][0], slow_depth_map(raw.points[(D2, 3)], P,
                                                                raw.height, raw.width))
    # train frame 5 has no frame 6 neighbour; the velodyne scan of a test frame is corrupt
    sd2 = _write_split(tmp_path / 'b', 'bad', {'train': [f'{D1} 1 l', f'{D1} 5 l'],
                                               'test': [f'{D2} 0000000002 l']})
    write_velodyne(raw.velodyne(D2, 2), np.zeros((0, 4)))
    out2 = tmp_path / 'out2'
    assert main(['--root', str(raw.root), '--out', str(out2), '--split', 'bad',
                 '--split-dir', str(sd2), '--no-progress']) == 1
    failed = (out2 / 'failed.txt').read_text()
    assert f'{raw.velodyne(D2, 2)}: corrupt velodyne scan' in failed
    assert not (out2 / 'splits' / 'bad' / 'train_files.txt').exists()  # required: nothing written
    rep = _convert(raw.root, out2, split='bad', split_dir=sd2)
    reasons = {(Path(f).name, r.split(': ', 1)[-1]) for _, f, r in rep.failed}
    assert ('0000000006.png', 'missing image') in reasons
    assert any(f'{sd2 / "bad" / "train_files.txt"}:2' in r for _, _, r in rep.failed)


def test_named_split_missing_drive_and_bad_lines(raw, tmp_path: Path, capsys) -> None:
    ghost = f'{DATE}/{DATE}_drive_0099_sync'
    sd = _write_split(tmp_path, 'eigen', {'test': [f'{D1} 0000000001 l', f'{ghost} 0000000005 l',
                                                   f'{ghost} 0000000006 l']})
    with pytest.raises(InputError, match=r'test_files.txt:2: drive .*drive_0099_sync does not '
                                         r'exist \(2 line\(s\) name it\)'):
        _convert(raw.root, tmp_path / 'o', split='eigen', split_dir=sd)
    bad = tmp_path / 'x' / 'eigen_zhou'
    bad.mkdir(parents=True)
    (bad / 'train_files.txt').write_text(f'{D1} 1 l\n{D1} one l\n')
    with pytest.raises(InputError, match=r'train_files.txt:2: frame index .one. is not an int'):
        _convert(raw.root, tmp_path / 'o', split='eigen_zhou', split_dir=tmp_path / 'x')
    assert main(['--root', str(raw.root), '--out', str(tmp_path / 'o'), '--split', 'eigen_zhou',
                 '--no-progress']) == 2
    assert 'does not ship the Eigen' in capsys.readouterr().err


def test_auto_split_needs_enough_drives(raw, tmp_path: Path) -> None:
    with pytest.raises(InputError, match='at least 3 usable drives'):
        convert(raw.root, tmp_path / 'o', progress=False, verbose=False)  # 1 val + 1 test + train


def test_cli_script_runs(raw, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(REPO / 'data_converters' / 'kitti.py'), '--root',
                        str(raw.root), '--out', str(tmp_path / 'o'), '--val-drives', '0',
                        '--no-progress'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'kitti[auto]: drives 2 scanned' in r.stdout and 'test 6' in r.stdout


def test_generate_depth_map_missing_file(raw) -> None:
    calib = read_calib(raw.root / DATE)
    missing = raw.root / D1 / 'velodyne_points' / 'data' / '0000000042.bin'
    with pytest.raises(DriveError, match='missing velodyne scan') as e:
        generate_depth_map(calib, missing)
    assert e.value.path == str(missing)
