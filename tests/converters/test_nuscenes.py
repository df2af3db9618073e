"""nuScenes converter on a synthetic v1.0-mini loaded by the real devkit: ground truth vs the
devkit's projection and the closed-form geometry, neighbour poses vs the fixture's motion,
condition splits, multi-sweep aggregation vs the devkit, lidarseg mapping, resume, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geo3d.converters.nuscenes import InputError, convert, load_sparse_depth, main
from geo3d.converters.nuscenes.sparse_depth import rasterize_min_depth
from tests.helpers.nuscenes_fixture import SceneSpec, write_nuscenes_mini

REPO = Path(__file__).resolve().parents[2]
NSWEEPS = 3
TRAIN, DAY_VAL, NIGHT_VAL = 'scene-0061', 'scene-0103', 'scene-0916'


def _convert(fx, out: Path, **kw):
    kw.setdefault('nsweeps', NSWEEPS)
    return convert(fx.root, out, progress=False, verbose=False, **kw)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The fixture converted once, with two worker processes."""
    tmp = tmp_path_factory.mktemp('nus')
    fx = write_nuscenes_mini(tmp / 'raw')
    out = tmp / 'out'
    rep = _convert(fx, out, workers=2)
    assert not rep.failed and rep.tasks['depth'].frames_written == 9
    from nuscenes.nuscenes import NuScenes
    return fx, out, NuScenes('v1.0-mini', str(fx.root), verbose=False)


def test_script_does_not_shadow_the_devkit() -> None:
    """``python data_converters/nuscenes.py`` puts its folder first on sys.path, where its own
    name would hide the devkit's ``nuscenes`` package; the script removes that entry."""
    code = ('import runpy, importlib.util; runpy.run_path("nuscenes.py", run_name="x"); '
            'print(importlib.util.find_spec("nuscenes").origin)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO / 'data_converters',
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith('site-packages/nuscenes/__init__.py')


def _info(out: Path, name: str) -> dict:
    return json.loads((out / 'depth' / 'splits' / name).read_text())


# ------------------------------------------------------------------------------------------------
# depth

def test_subsets_and_night_split(converted) -> None:
    fx, out, _ = converted
    train = _info(out, 'train_info.json')
    # 9 camera frames (2 sweeps before each of 3 key frames); 7 have both neighbours
    assert [f['chain_index'] for f in train['frames']] == list(range(1, 8))
    assert {f['scene'] for f in train['frames']} == {TRAIN}
    val = _info(out, 'val_info.json')
    keys = {s: [r.token for r in fx.key_cams(s)] for s in (DAY_VAL, NIGHT_VAL)}
    assert [f['token'] for f in val['frames']] == keys[DAY_VAL] + keys[NIGHT_VAL]
    night = _info(out, 'night_val_info.json')
    assert [f['token'] for f in night['frames']] == keys[NIGHT_VAL]
    assert night['condition'] == 'night' and set(night['scenes']) == {NIGHT_VAL}
    assert [f['token'] for f in _info(out, 'day_val_info.json')['frames']] == keys[DAY_VAL]
    assert [f['token'] for f in _info(out, 'rain_val_info.json')['frames']] == keys[NIGHT_VAL]
    assert not (out / 'depth/splits/night_train_info.json').exists()
    fr = val['frames'][0]
    k = fx.K
    assert fr['intrinsics'] == pytest.approx([k[0, 0] / 96, k[1, 1] / 54, k[0, 2] / 96,
                                              k[1, 2] / 54])
    assert (fr['width'], fr['height']) == (96, 54) and fr['gt_points'] > 100


def _devkit_min_map(nusc, lidar_token: str, cam_token: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference: the devkit's own map_pointcloud_to_image, rasterised by an obvious loop;
    returns (minimum-depth map, last-write map, pixels hit by a point within 1e-3 px of a
    pixel edge, where float rounding of the transform may move it across)."""
    pts, depth, im = nusc.explorer.map_pointcloud_to_image(lidar_token, cam_token)
    w, h = im.size
    best = np.zeros((h, w), np.float64)
    last = np.zeros((h, w), np.float64)
    edge = np.zeros((h, w), bool)
    for u, v, d in zip(pts[0], pts[1], depth):
        r, c = int(v), int(u)
        best[r, c] = d if best[r, c] == 0 else min(best[r, c], d)
        last[r, c] = d
        for x in (u, v):
            if min(x % 1.0, 1.0 - x % 1.0) < 1e-3:
                edge[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = True
    return best, last, edge


def _reference_depth(fx, scene: str, cam, lidar) -> tuple[np.ndarray, np.ndarray, int]:
    """Independent float64 reference from the fixture's geometry: every point of the key scan
    (static points are fixed in the world, ego returns ride with the LiDAR) moved to the
    camera with the poses the fixture drove, projected with K, devkit filters, minimum per
    pixel. Returns (map, pixels near a pixel edge, number of pixels where a pole point hides
    another surface)."""
    sl = fx.part_slices()
    static = fx.static_points(scene)
    ego = (lidar.global_from_sensor[:3, :3] @ fx.parts['ego'].T).T + \
        lidar.global_from_sensor[:3, 3]
    pts = np.concatenate([static, ego])
    cam_from_global = np.linalg.inv(cam.global_from_sensor)
    p = (cam_from_global[:3, :3] @ pts.T).T + cam_from_global[:3, 3]
    uvw = (fx.K @ p.T).T
    u, v, z = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2], p[:, 2]
    keep = (z > 1) & (u > 1) & (u < fx.width - 1) & (v > 1) & (v < fx.height - 1)
    ref = np.zeros((fx.height, fx.width))
    edge = np.zeros_like(ref, bool)
    parts = np.zeros_like(ref, int)  # bit 1: a pole point, bit 2: a point of another surface
    is_pole = np.zeros(len(pts), bool)
    is_pole[sl['pole']] = True
    for i in np.flatnonzero(keep):
        r, c = int(v[i]), int(u[i])
        ref[r, c] = z[i] if ref[r, c] == 0 else min(ref[r, c], z[i])
        parts[r, c] |= 1 if is_pole[i] else 2
        if min(u[i] % 1, 1 - u[i] % 1, v[i] % 1, 1 - v[i] % 1) < 1e-3:
            edge[r, c] = True
    return ref, edge, int((parts == 3).sum())


def test_gt_depth_matches_the_known_geometry(converted) -> None:
    """Ground truth = the fixture's planes seen from the camera pose at the CAMERA timestamp
    (motion compensated), nearest surface per pixel."""
    fx, out, _ = converted
    occluded = 0
    for scene in (DAY_VAL, NIGHT_VAL):
        frames = [f for f in _info(out, 'val_info.json')['frames'] if f['scene'] == scene]
        for cam, lidar, fr in zip(fx.key_cams(scene), fx.key_lidars(scene), frames):
            assert fr['token'] == cam.token
            ref, edge, both = _reference_depth(fx, scene, cam, lidar)
            gt = load_sparse_depth(out / 'depth' / fr['gt_depth'])
            np.testing.assert_array_equal((gt > 0)[~edge], (ref > 0)[~edge])
            np.testing.assert_allclose(gt[~edge], ref[~edge], rtol=1e-5, atol=1e-4)
            occluded += both
    assert occluded > 50  # pixels where the pole's depth had to win over the wall / ground


def test_rasterize_min_depth_against_loop() -> None:
    rng = np.random.default_rng(0)
    u, v = rng.uniform(-2, 12, 300), rng.uniform(-2, 8, 300)
    d = rng.uniform(1, 50, 300).astype(np.float32)
    rows, cols, depth = rasterize_min_depth(u, v, d, 6, 10)
    ref: dict = {}
    for x, y, z in zip(u, v, d):
        if 0 <= x < 10 and 0 <= y < 6:
            key = (int(y), int(x))
            ref[key] = min(ref.get(key, np.inf), z)
    assert dict(zip(zip(rows.tolist(), cols.tolist()), depth.tolist())) == \
        pytest.approx({k: float(v) for k, v in ref.items()})
    with pytest.raises(ValueError, match='same length'):
        rasterize_min_depth(u, v[:3], d, 6, 10)


def test_neighbour_poses_follow_the_ego_motion(converted) -> None:
    fx, out, _ = converted
    frames = _info(out, 'train_info.json')['frames']
    cams = fx.cams[TRAIN]
    for f in frames:
        tgt = cams[f['chain_index']]
        for off in ('-1', '1'):
            nb = cams[f['chain_index'] + int(off)]
            assert f['neighbours'][off]['token'] == nb.token
            ref = np.linalg.inv(nb.global_from_sensor) @ tgt.global_from_sensor
            np.testing.assert_allclose(f['neighbours'][off]['T'], ref, atol=1e-9)
    # composition: T(i -> i+1) @ T(i+1 -> i) = I
    by_index = {f['chain_index']: f for f in frames}
    for i in range(1, 7):
        fwd = np.array(by_index[i]['neighbours']['1']['T'])
        back = np.array(by_index[i + 1]['neighbours']['-1']['T'])
        np.testing.assert_allclose(fwd @ back, np.eye(4), atol=1e-9)
    # straight drive at 5 m/s: the previous camera is 5 m/s * dt further from the scene
    f = by_index[4]
    dt = (f['timestamp'] - f['neighbours']['-1']['timestamp']) * 1e-6
    T = np.array(f['neighbours']['-1']['T'])
    assert T[2, 3] == pytest.approx(5.0 * dt, rel=0.02)
    assert f['ego_speed'] == pytest.approx(5.0, rel=1e-6)


def test_min_speed_and_keyframes_only(tmp_path) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-0061', 'parked', 0.0),
                                                       SceneSpec('scene-0103', 'moving')])
    rep = _convert(fx, tmp_path / 'out', task='depth', min_speed=0.5)
    assert 'train' not in rep.tasks['depth'].subsets  # the only train scene stands still
    rep = _convert(fx, tmp_path / 'out2', task='depth', keyframes_only=True,
                   val_scenes=['scene-0061'])
    train = _info(tmp_path / 'out2', 'train_info.json')['frames']
    assert [f['is_key_frame'] for f in train] == [True, True]  # the last has no +1 neighbour


# ------------------------------------------------------------------------------------------------
# lidar

def test_lidarseg_mapping_and_frame_files(converted) -> None:
    fx, out, nusc = converted
    from nuscenes.eval.lidarseg.utils import LidarsegClassMapper
    mapper = LidarsegClassMapper(nusc)
    meta = json.loads((out / 'lidar/meta.json').read_text())
    coarse = sorted((i, n) for n, i in mapper.coarse_name_2_coarse_idx_mapping.items() if i)
    assert meta['classes'] == [n for _, n in coarse] and len(meta['classes']) == 16
    assert (out / 'lidar/splits/train.txt').read_text().split() == \
        [f'{TRAIN}_{k:03d}' for k in range(3)]
    folder = out / 'lidar/scenes' / f'{DAY_VAL}_001'
    seg = np.load(folder / 'segment.npy')
    time = np.load(folder / 'time.npy')
    coord = np.load(folder / 'coord.npy')
    assert seg.dtype == np.int16 and coord.shape == (len(seg), 3) and time.shape == seg.shape
    sl = fx.part_slices()
    names = np.array(meta['classes'])
    assert set(names[seg[sl['ground']]]) == {'driveable_surface'}
    assert set(names[seg[sl['wall']]]) == {'manmade'}
    assert set(names[seg[sl['pole']]]) == {'barrier'}
    assert (seg[sl['ego']] == -1).all()       # vehicle.ego -> ignore
    n_key = sl['ego'].stop
    assert (time[:n_key] == 0).all() and (seg[n_key:] == -1).all() and (time[n_key:] > 0).all()
    m = json.loads((folder / 'meta.json').read_text())
    assert m['sweeps_used'] == NSWEEPS and m['labelled'] and m['num_points'] == len(seg)


def test_multisweep_static_points_coincide_and_match_devkit(converted) -> None:
    fx, out, nusc = converted
    from nuscenes.utils.data_classes import LidarPointCloud
    sample = nusc.get('sample', fx.samples[NIGHT_VAL][1])
    ref, ref_times = LidarPointCloud.from_file_multisweep(nusc, sample, 'LIDAR_TOP', 'LIDAR_TOP',
                                                          nsweeps=NSWEEPS)
    folder = out / 'lidar/scenes' / f'{NIGHT_VAL}_001'
    coord, time = np.load(folder / 'coord.npy'), np.load(folder / 'time.npy')
    n_key = fx.part_slices()['ego'].stop
    n_ref_key = int((ref_times[0] == 0).sum())  # the devkit also drops close key-frame points
    np.testing.assert_allclose(coord[n_key:], ref.points[:3, n_ref_key:].T, atol=1e-4)
    np.testing.assert_allclose(time[n_key:], ref_times[0, n_ref_key:], atol=1e-6)
    assert sorted(set(np.round(time, 3))) == [0.0, 0.25, 0.5]
    # the same static wall point from each sweep lands on the key frame's copy
    wall = fx.part_slices()['wall']
    key_wall = coord[wall]
    for lag in (0.25, 0.5):
        sweep = coord[np.isclose(time, lag)]
        d = np.linalg.norm(sweep[:, None, :] - key_wall[None, ::17, :], axis=2).min(0)
        assert d.max() < 1e-3


def test_no_lidarseg_gives_ignore_labels(tmp_path) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-0061', 'a'),
                                                       SceneSpec('scene-0103', 'b')],
                             with_lidarseg=False)
    rep = _convert(fx, tmp_path / 'out', task='lidar', nsweeps=1)
    assert rep.tasks['lidar'].frames_written == 6 and not rep.failed
    meta = json.loads((tmp_path / 'out/lidar/meta.json').read_text())
    assert meta['classes'] is None
    seg = np.load(tmp_path / 'out/lidar/scenes/scene-0061_000/segment.npy')
    assert (seg == -1).all()
    assert not (np.load(tmp_path / 'out/lidar/scenes/scene-0061_000/time.npy')).any()


# ------------------------------------------------------------------------------------------------
# resume and bad input

def test_resume_skips_and_overwrite_rewrites(tmp_path) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-0061', 'a'),
                                                       SceneSpec('scene-0103', 'b')])
    out = tmp_path / 'out'
    first = _convert(fx, out)
    assert first.tasks['depth'].frames_written == 6 and first.tasks['lidar'].frames_written == 6
    gt = sorted((out / 'depth/gt').rglob('*.npz'))
    stamps = [p.stat().st_mtime_ns for p in gt]
    again = _convert(fx, out)
    for t in ('depth', 'lidar'):
        assert again.tasks[t].frames_written == 0 and again.tasks[t].frames_skipped == 6
    assert [p.stat().st_mtime_ns for p in gt] == stamps
    assert again.tasks['depth'].subsets == first.tasks['depth'].subsets
    # other options are not "done": a different sweep count rewrites the point clouds
    assert _convert(fx, out, task='lidar', nsweeps=1).tasks['lidar'].frames_written == 6
    assert _convert(fx, out, overwrite=True).tasks['depth'].frames_written == 6


def test_missing_files_are_reported_and_skipped(tmp_path, capsys) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw')
    cam = fx.cams[TRAIN][4]                          # a sweep image in the train scene
    key_lidar = fx.key_lidars(DAY_VAL)[1]            # ground truth + point cloud of one frame
    sweep = fx.lidars[NIGHT_VAL][2]                  # a past sweep of the night key frame 1
    assert not cam.is_key_frame and key_lidar.is_key_frame and not sweep.is_key_frame
    for rec in (cam, key_lidar, sweep):
        (fx.root / rec.filename).unlink()
    out = tmp_path / 'out'
    argv = ['--root', str(fx.root), '--out', str(out), '--nsweeps', str(NSWEEPS),
            '--no-progress']
    assert main(argv) == 1
    err = capsys.readouterr().err
    failed = (out / 'depth/failed.txt').read_text() + (out / 'lidar/failed.txt').read_text()
    for rec, what in ((cam, 'missing camera image'), (key_lidar, 'missing LIDAR_TOP scan'),
                      (key_lidar, 'missing LIDAR_TOP key frame scan'),
                      (sweep, 'missing LIDAR_TOP sweep')):
        assert f'{fx.root / rec.filename}: {what}' in failed
        assert str(fx.root / rec.filename) in err
    train = _info(out, 'train_info.json')['frames']
    # frame 4 (missing) and its neighbours 3 and 5 cannot be training targets
    assert [f['chain_index'] for f in train] == [1, 2, 6, 7]
    val_tokens = [f['token'] for f in _info(out, 'val_info.json')['frames']]
    assert fx.key_cams(DAY_VAL)[1].token not in val_tokens and len(val_tokens) == 5
    val_lidar = (out / 'lidar/splits/val.txt').read_text().split()
    assert f'{DAY_VAL}_001' not in val_lidar and f'{NIGHT_VAL}_001' in val_lidar
    meta = json.loads((out / f'lidar/scenes/{NIGHT_VAL}_001/meta.json').read_text())
    assert meta['sweeps_used'] == NSWEEPS - 1
    # a resumed run reports the sweep again (the frame folder remembers it)
    rep = _convert(fx, out)
    assert any(str(fx.root / sweep.filename) == f for _, f, _ in rep.failed)


def test_corrupt_scan_is_reported(tmp_path) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-0061', 'a'),
                                                       SceneSpec('scene-0103', 'b')])
    bad = fx.root / fx.key_lidars('scene-0103')[0].filename
    bad.write_bytes(b'\0' * 7)
    rep = _convert(fx, tmp_path / 'out', nsweeps=1)
    assert ('scene-0103', str(bad), 'corrupt LIDAR_TOP key frame scan: 7 bytes is not a whole '
            'number of 5-float32 points (x y z intensity ring)') in rep.failed


def test_missing_table_and_bad_arguments(tmp_path, capsys) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-0061', 'a')])
    (fx.root / 'v1.0-mini/ego_pose.json').unlink()
    with pytest.raises(InputError, match=r'missing: .*v1.0-mini/ego_pose.json'):
        _convert(fx, tmp_path / 'out')
    assert main(['--root', str(fx.root), '--out', str(tmp_path / 'o')]) == 2
    assert 'ego_pose.json' in capsys.readouterr().err
    with pytest.raises(InputError, match='no table folder .*v1.0-trainval'):
        _convert(fx, tmp_path / 'out', version='v1.0-trainval')
    with pytest.raises(InputError, match='nsweeps must be >= 1'):
        _convert(fx, tmp_path / 'out', nsweeps=0)
    with pytest.raises(InputError, match='nowhere is not a directory'):
        convert(tmp_path / 'nowhere', tmp_path / 'out', progress=False, verbose=False)


def test_split_override_for_non_official_scenes(tmp_path) -> None:
    fx = write_nuscenes_mini(tmp_path / 'raw', scenes=[SceneSpec('scene-9001', 'a'),
                                                       SceneSpec('scene-9002', 'Night')])
    with pytest.raises(InputError, match='--val-scenes'):
        _convert(fx, tmp_path / 'out')
    with pytest.raises(InputError, match=r"not in this version: \['scene-0001'\]"):
        _convert(fx, tmp_path / 'out', val_scenes=['scene-0001'])
    rep = _convert(fx, tmp_path / 'out', task='depth', val_scenes=['scene-9002'])
    assert rep.split_source == 'override (1 val scenes)'
    assert rep.tasks['depth'].subsets == {'train': 7, 'val': 3, 'night_val': 3}
