"""Tests for the procedural KITTI-raw demo drives (geo3d.datasets.demo_street).

References are independent of the generator: pykitti reads the files; projections use the
calibration numbers as pykitti parses them; depths are checked against closed forms (ground
plane, fronto-parallel wall, sphere, lidar rings on flat ground) and the broad phase against
brute force.
"""
from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pykitti
import pytest
from PIL import Image
from pykitti.utils import read_calib_file

from geo3d.datasets.demo_street.calib import kitti_calib_texts, make_rig
from geo3d.datasets.demo_street.generate import (DEMO_DATE, MANIFEST, VIDEO_NAME,
                                                 make_demo_drive, make_demo_kitti,
                                                 render_demo_frame)
from geo3d.datasets.demo_street.lidar import (HDL64_ELEVATIONS_DEG, lidar_candidates,
                                              scan_velodyne, velodyne_directions)
from geo3d.datasets.demo_street.raycast import cast_rays, occluded, primitive_corners
from geo3d.datasets.demo_street.renderer import pinhole_candidates, render_view
from geo3d.datasets.demo_street.scene import BoxSet, SphereSet, StreetScene, make_street_scene
from geo3d.datasets.demo_street.textures import filtered_box, filtered_pulse_train
from geo3d.datasets.demo_street.video import write_video
from geo3d.datasets.demo_street.writer import KittiDriveWriter, decode_depth_png

H, W = 48, 160
FRAMES = 4
SEED = 3
DRIVE = '9001'
KW = dict(num_drives=1, frames_per_drive=FRAMES, height=H, width=W, seed=SEED,
          moving_objects=1, video_frames=5, lidar_azimuth_steps=256)


@pytest.fixture(scope='module')
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('kitti_demo')
    summary = make_demo_kitti(root, **KW)
    assert summary.drives == [DRIVE] and summary.video == root / VIDEO_NAME
    return root


def _drive_dir(root: Path) -> Path:
    return root / DEMO_DATE / f'{DEMO_DATE}_drive_{DRIVE}_sync'


def _velo_to_image(root: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """P_rect_02 @ R_rect_00 @ [R|T]_velo->cam from the files, parsed by pykitti."""
    c2c = read_calib_file(str(root / DEMO_DATE / 'calib_cam_to_cam.txt'))
    v2c = read_calib_file(str(root / DEMO_DATE / 'calib_velo_to_cam.txt'))
    r0 = np.eye(4)
    r0[:3, :3] = c2c['R_rect_00'].reshape(3, 3)
    tv = np.eye(4)
    tv[:3, :3] = v2c['R'].reshape(3, 3)
    tv[:3, 3] = v2c['T']
    w, h = c2c['S_rect_02']
    return c2c['P_rect_02'].reshape(3, 4) @ r0 @ tv, (int(h), int(w))


# ------------------------------------------------------------------------------------------
# the written drive, read by pykitti


def test_layout_and_calibration_keys(demo: Path) -> None:
    d = _drive_dir(demo)
    for sub in ('image_02', 'image_03', 'velodyne_points', 'oxts'):
        names = sorted(p.name for p in (d / sub / 'data').iterdir())
        ext = {'velodyne_points': '.bin', 'oxts': '.txt'}.get(sub, '.png')
        assert names == [f'{k:010d}{ext}' for k in range(FRAMES)]
    for f in ('image_02/timestamps.txt', 'oxts/timestamps.txt', 'oxts/dataformat.txt',
              'velodyne_points/timestamps_start.txt', 'velodyne_points/timestamps_end.txt'):
        assert (d / f).is_file(), f
    stamps = (d / 'image_02' / 'timestamps.txt').read_text().splitlines()
    assert len(stamps) == FRAMES and all(len(s.split('.')[1]) == 9 for s in stamps)
    counts = {'corner_dist': 1, 'S_rect_02': 2, 'R_rect_00': 9, 'P_rect_02': 12, 'K_03': 9,
              'D_01': 5, 'R_02': 9, 'T_03': 3, 'S_00': 2}
    text = (demo / DEMO_DATE / 'calib_cam_to_cam.txt').read_text()
    assert '\n\n' not in text and text.endswith('\n')
    c2c = read_calib_file(str(demo / DEMO_DATE / 'calib_cam_to_cam.txt'))
    for key, n in counts.items():
        assert c2c[key].size == n, key
    for line in text.splitlines()[1:]:  # Monodepth2 splits values on single spaces
        [float(v) for v in line.split(':', 1)[1].strip().split(' ')]
    assert tuple(c2c['S_rect_02']) == (W, H)
    v2c = read_calib_file(str(demo / DEMO_DATE / 'calib_velo_to_cam.txt'))
    assert v2c['R'].size == 9 and v2c['T'].size == 3 and v2c['delta_f'].size == 2


def test_pykitti_reads_what_was_generated(demo: Path) -> None:
    data = pykitti.raw(str(demo), DEMO_DATE, DRIVE)
    assert len(data) == FRAMES
    # real 2011_09_26 rig: fx scaled by W / 1242, the stereo baseline unchanged (0.5327 m)
    assert data.calib.K_cam2[0, 0] == pytest.approx(7.215377e+02 * W / 1242, rel=1e-6)
    assert data.calib.K_cam2[1, 1] == pytest.approx(7.215377e+02 * H / 375, rel=1e-6)
    assert data.calib.b_rgb == pytest.approx(0.5327, abs=1e-3)
    rig = make_rig(kitti_calib_texts(W, H))
    drive = make_demo_drive(SEED, 0, FRAMES, rig, moving_objects=1)
    frame = render_demo_frame(drive, 2, rig, lidar_azimuth_steps=256)
    left = data.get_cam2(2)
    assert left.mode == 'RGB' and left.size == (W, H)
    np.testing.assert_array_equal(np.asarray(left), frame['images'][2])
    np.testing.assert_array_equal(np.asarray(data.get_cam3(2)), frame['images'][3])
    velo = data.get_velo(2)
    assert velo.dtype == np.float32 and velo.shape[1] == 4 and len(velo) > 1000
    np.testing.assert_array_equal(velo, frame['velo'])
    assert 0.0 <= velo[:, 3].min() and velo[:, 3].max() <= 1.0
    depth = decode_depth_png(_drive_dir(demo) / 'proj_depth_demo' / 'image_02' / '0000000002.png')
    np.testing.assert_allclose(depth, frame['depth'][2], atol=0.5 / 256 + 1e-6)
    assert data.timestamps[1] > data.timestamps[0]
    dt = (data.timestamps[1] - data.timestamps[0]).total_seconds()
    assert dt == pytest.approx(0.1, abs=0.005)


def test_oxts_poses_are_the_trajectory(demo: Path) -> None:
    data = pykitti.raw(str(demo), DEMO_DATE, DRIVE)
    rig = make_rig(kitti_calib_texts(W, H))
    drive = make_demo_drive(SEED, 0, FRAMES, rig, moving_objects=1)
    T = drive.imu_poses()
    T_w = np.stack([o.T_w_imu for o in data.oxts])
    np.testing.assert_allclose(T_w[0][:3, 3], 0.0, atol=1e-9)
    for k in range(1, FRAMES):  # consecutive motion, independent of the world frame
        rel_ref = np.linalg.inv(T[k - 1]) @ T[k]
        rel = np.linalg.inv(T_w[k - 1]) @ T_w[k]
        np.testing.assert_allclose(rel, rel_ref, atol=2e-6)
        step = np.linalg.norm(rel[:3, 3])
        assert 0.7 < step < 1.3  # about 1 m per frame at 10 Hz
        assert abs(math.atan2(rel[1, 0], rel[0, 0])) < 0.02  # small yaw changes
        p = data.oxts[k].packet
        # forward speed field agrees with the pose differences
        speed = step / (drive.times[k] - drive.times[k - 1])
        assert p.vf == pytest.approx(speed, rel=0.05)
        assert abs(p.vl) < 0.05 and p.au == pytest.approx(9.81, abs=0.05)
    # world rotation = global heading about up, times the road-frame rotation
    rz = np.array([[math.cos(drive.heading), -math.sin(drive.heading), 0],
                   [math.sin(drive.heading), math.cos(drive.heading), 0], [0, 0, 1]])
    np.testing.assert_allclose(T_w[2][:3, :3], rz @ T[2][:3, :3], atol=1e-9)


def _projection_agreement(velo: np.ndarray, m: np.ndarray, depth: np.ndarray
                          ) -> tuple[float, float, float, int]:
    """Project velodyne points with the 3x4 ``m``; compare with ``depth`` at the projection.

    Inverse depth is affine in (u, v) on a plane, so bilinear interpolation of it is exact
    inside a planar patch. Only points whose 2x2 pixel neighbourhood is one smooth surface are
    compared (at edges the lidar, 0.3 m from the camera, legitimately sees other things).
    Returns (fraction within 4 mm + 0.1 %, median error, fraction smooth, points in view).
    """
    h, w = depth.shape
    uvw = np.c_[velo[:, :3], np.ones(len(velo))] @ m.T
    keep = (uvw[:, 2] > 1.0) & (velo[:, 0] >= 0)
    z = uvw[keep, 2]
    u, v = uvw[keep, 0] / z, uvw[keep, 1] / z
    inb = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    u, v, z = u[inb], v[inb], z[inb]
    u0 = np.minimum(np.floor(u).astype(int), w - 2)
    v0 = np.minimum(np.floor(v).astype(int), h - 2)
    q = np.stack([depth[v0, u0], depth[v0, u0 + 1], depth[v0 + 1, u0], depth[v0 + 1, u0 + 1]])
    smooth = (q > 0).all(0) & (q.max(0) < 1.15 * q.min(0))
    inv = 1.0 / q[:, smooth]
    a, b = (u - u0)[smooth], (v - v0)[smooth]
    ib = (inv[0] * (1 - a) + inv[1] * a) * (1 - b) + (inv[2] * (1 - a) + inv[3] * a) * b
    err = np.abs(1.0 / ib - z[smooth])
    good = err < 0.004 + 0.001 * z[smooth]  # 16-bit PNG quantisation is 1/256 m
    return float(good.mean()), float(np.median(err)), float(smooth.mean()), len(z)


def test_velodyne_projects_onto_rendered_depth(demo: Path) -> None:
    m, (h, w) = _velo_to_image(demo)
    data = pykitti.raw(str(demo), DEMO_DATE, DRIVE)
    shifted = m.copy()
    shifted[:2] += m[2]  # one pixel right and down: must be detected
    for k in range(FRAMES):
        velo = data.get_velo(k).astype(np.float64)
        depth = decode_depth_png(_drive_dir(demo) / 'proj_depth_demo' / 'image_02'
                                 / f'{k:010d}.png')
        assert depth.shape == (h, w)
        good, med, smooth, n = _projection_agreement(velo, m, depth)
        assert n > 500 and smooth > 0.6
        assert good > 0.85 and med < 0.0015, (k, good, med)
        good_s, med_s, _, _ = _projection_agreement(velo, shifted, depth)
        assert good_s < 0.8 and med_s > 0.004, (k, good_s, med_s)


def test_dynamic_masks_and_moving_car(demo: Path) -> None:
    d = _drive_dir(demo) / 'dynamic_mask_demo' / 'image_02'
    masks = [np.asarray(Image.open(d / f'{k:010d}.png')) for k in range(FRAMES)]
    assert all(set(np.unique(mk)) <= {0, 255} for mk in masks)
    assert sum(int((mk > 0).sum()) for mk in masks) > 0
    rig = make_rig(kitti_calib_texts(W, H))
    drive = make_demo_drive(SEED, 0, FRAMES, rig, moving_objects=1)
    car = drive.scene.movers[0]
    b0, b1 = car.at(0.0), car.at(0.5)
    np.testing.assert_allclose(b1.center - b0.center, [[car.speed * 0.5, 0, 0]] * len(b0),
                               atol=1e-9)
    assert b0.dynamic.all() and not drive.scene.boxes.dynamic.any()


def test_video_decodes(demo: Path) -> None:
    with av.open(str(demo / VIDEO_NAME)) as c:
        frames = [f.to_ndarray(format='rgb24') for f in c.decode(video=0)]
    assert len(frames) == KW['video_frames']
    assert frames[0].shape == (H, W, 3)
    assert frames[0].std() > 10  # not a blank frame


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kw = dict(KW, frames_per_drive=2, video_frames=3, height=24, width=80,
              lidar_azimuth_steps=64)
    a, b, c = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    make_demo_kitti(a, **kw)
    make_demo_kitti(b, **kw)
    make_demo_kitti(c, **dict(kw, seed=SEED + 1))
    files = sorted(p.relative_to(a) for p in a.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob('*') if p.is_file())
    assert len(files) > 20
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    img = Path(DEMO_DATE) / f'{DEMO_DATE}_drive_{DRIVE}_sync' / 'image_02' / 'data' / \
        '0000000000.png'
    assert (a / img).read_bytes() != (c / img).read_bytes()


def test_regeneration_removes_stale_drives(tmp_path: Path) -> None:
    kw = dict(KW, frames_per_drive=1, video_frames=0, height=16, width=40,
              lidar_azimuth_steps=32)
    make_demo_kitti(tmp_path, **dict(kw, num_drives=2))
    assert (tmp_path / DEMO_DATE / f'{DEMO_DATE}_drive_9002_sync').is_dir()
    make_demo_kitti(tmp_path, **kw)
    assert not (tmp_path / DEMO_DATE / f'{DEMO_DATE}_drive_9002_sync').exists()
    assert '"9001"' in (tmp_path / MANIFEST).read_text()


# ------------------------------------------------------------------------------------------
# renderer and lidar against closed forms


def _empty_scene(boxes: BoxSet | None = None, spheres: SphereSet | None = None
                 ) -> StreetScene:
    sph = spheres or SphereSet(np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int64),
                               np.zeros((0, 3)), np.zeros(0, np.int64))
    return StreetScene(boxes or BoxSet.empty(), sph)


def _level_camera(height: float, x: float = 0.0) -> np.ndarray:
    """Camera at (x, 0, height) looking along +x (camera x right = -y, y down = -z)."""
    t = np.eye(4)
    t[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], np.float64)
    t[:3, 3] = (x, 0.0, height)
    return t


def test_ground_plane_depth_closed_form() -> None:
    k = np.array([[50.0, 0, 31.5], [0, 55.0, 11.7], [0, 0, 1]])
    h = 1.65
    view = render_view(_empty_scene(), 0.0, _level_camera(h), k, 24, 64, shadows=False)
    rows = np.arange(24, dtype=np.float64)
    expect = np.where(rows > 11.7, h * 55.0 / np.maximum(rows - 11.7, 1e-9), 0.0)
    np.testing.assert_allclose(view.depth, np.repeat(expect[:, None], 64, 1).astype(np.float32),
                               rtol=1e-6)
    assert (view.material[rows <= 11.7] == -1).all()  # sky above the horizon


def test_wall_and_sphere_depth_closed_form() -> None:
    k = np.array([[40.0, 0, 20.0], [0, 40.0, 15.0], [0, 0, 1]])
    wall = BoxSet(np.array([[12.5, 0.0, 3.0]]), np.array([[0.5, 20.0, 3.0]]), np.zeros(1),
                  np.array([2]), np.array([[0.8, 0.7, 0.6]]), np.array([5]),
                  np.array([[3.0, 2.0, 1.0, 0.0]]), np.zeros(1, bool))
    cam = _level_camera(1.5)
    view = render_view(_empty_scene(wall), 0.0, cam, k, 31, 41, shadows=False)
    # the wall's front face is the plane x = 12 in front of the camera: depth 12 where the
    # ray meets it above the ground, i.e. rows with (v - 15) * 12 / 40 < 1.5
    rows = np.arange(31)
    on_wall = (rows - 15.0) * 12.0 / 40.0 < 1.5
    np.testing.assert_allclose(view.depth[on_wall], 12.0, rtol=1e-9)
    ball = SphereSet(np.array([[10.0, 0.0, 1.5]]), np.array([2.0]), np.array([8]),
                     np.array([[0.2, 0.5, 0.2]]), np.array([1]))
    view = render_view(_empty_scene(None, ball), 0.0, cam, k, 31, 41, shadows=False)
    assert view.depth[15, 20] == pytest.approx(8.0, rel=1e-9)  # centre ray: distance - r


def test_lidar_rings_on_flat_ground() -> None:
    t = np.eye(4)
    t[:3, 3] = (5.0, 2.0, 1.73)
    pts = scan_velodyne(_empty_scene(), 0.0, t, azimuth_steps=36, min_range=0.5,
                        max_range=1e4)
    el = HDL64_ELEVATIONS_DEG[HDL64_ELEVATIONS_DEG < 0]
    assert len(pts) == len(el) * 36  # rings above the horizon never return
    rng = np.linalg.norm(pts[:, :3].astype(np.float64), axis=1)
    expect = np.repeat(1.73 / np.sin(np.radians(-el)), 36)
    np.testing.assert_allclose(np.sort(rng), np.sort(expect), rtol=1e-5)
    np.testing.assert_allclose(pts[:, 2], -1.73, atol=1e-5)


def test_broad_phase_matches_brute_force() -> None:
    rig = make_rig(kitti_calib_texts(96, 32))
    drive = make_demo_drive(7, 0, 3, rig, moving_objects=2)
    scene = drive.scene
    boxes = scene.boxes_at(0.1)
    corners = primitive_corners(boxes, scene.spheres)
    T = drive.imu_poses()[1]
    # camera
    cam = T @ np.linalg.inv(rig.T_cam_imu(2))
    k_inv = np.linalg.inv(rig.K(2))
    u, v = np.meshgrid(np.arange(96.0), np.arange(32.0))
    dirs = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], -1) @ (cam[:3, :3] @ k_inv).T
    cands = pinhole_candidates(corners, np.linalg.inv(cam), rig.K(2), 32, 96)
    fast = cast_rays(boxes, scene.spheres, cam[:3, 3], dirs, cands)
    slow = cast_rays(boxes, scene.spheres, cam[:3, 3], dirs, None)
    np.testing.assert_array_equal(fast.prim, slow.prim)
    np.testing.assert_array_equal(fast.t, slow.t)
    assert len(np.unique(slow.prim)) > 10
    # lidar
    velo = T @ np.linalg.inv(rig.T_velo_imu)
    ld = velodyne_directions(90).reshape(-1, 3) @ velo[:3, :3].T
    lc = lidar_candidates(corners, np.linalg.inv(velo), HDL64_ELEVATIONS_DEG, 90)
    fast = cast_rays(boxes, scene.spheres, velo[:3, 3], ld, lc)
    slow = cast_rays(boxes, scene.spheres, velo[:3, 3], ld, None)
    np.testing.assert_array_equal(fast.prim, slow.prim)
    # shadow rays: the sorted-projection broad phase against testing every primitive
    pts = slow.pos[slow.prim >= 0][::7] + 1e-3 * slow.normal[slow.prim >= 0][::7]
    from geo3d.datasets.demo_street.raycast import ray_box, ray_sphere
    brute = np.zeros(len(pts), bool)
    d = np.broadcast_to(scene.sun, pts.shape)
    for j in range(len(boxes)):
        brute |= np.isfinite(ray_box(pts, d, boxes.center[j], boxes.half[j], boxes.yaw[j]))
    for j in range(len(scene.spheres)):
        brute |= np.isfinite(ray_sphere(pts, d, scene.spheres.center[j],
                                        scene.spheres.radius[j]))
    np.testing.assert_array_equal(occluded(boxes, scene.spheres, pts, scene.sun), brute)
    assert 0 < brute.sum() < len(brute)


# ------------------------------------------------------------------------------------------
# textures against a brute-force box filter


def test_filtered_patterns_equal_sampled_average() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, 50)
    width = rng.uniform(0.01, 3.0, 50)
    s = (np.arange(20001) / 20000 - 0.5)[None] * width[:, None] + x[:, None]  # (50, 20001)
    period, lo, hi = 0.9, 0.2, 0.5
    m = np.mod(s, period)
    ref = ((m >= lo) & (m < hi)).mean(1)
    np.testing.assert_allclose(filtered_pulse_train(x, period, lo, hi, width), ref, atol=2e-3)
    ref_box = ((s >= -0.3) & (s <= 1.1)).mean(1)
    np.testing.assert_allclose(filtered_box(x, -0.3, 1.1, width), ref_box, atol=2e-3)


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='num_drives'):
        make_demo_kitti(tmp_path, num_drives=0)
    with pytest.raises(ValueError, match='height'):
        make_demo_kitti(tmp_path, height=4)
    real = tmp_path / 'real'
    (real / DEMO_DATE).mkdir(parents=True)
    (real / DEMO_DATE / 'calib_cam_to_cam.txt').write_text('calib_time: real\n')
    with pytest.raises(FileExistsError, match='calib_cam_to_cam.txt exists'):
        make_demo_kitti(real, num_drives=1, frames_per_drive=1, height=16, width=40)
    assert (real / DEMO_DATE / 'calib_cam_to_cam.txt').read_text() == 'calib_time: real\n'
    with pytest.raises(ValueError, match='x_range'):
        make_street_scene(0, (10.0, 0.0))
    with pytest.raises(ValueError, match='4 digits'):
        KittiDriveWriter(tmp_path, DEMO_DATE, '12')
    with KittiDriveWriter(tmp_path, DEMO_DATE, '9100') as wr:
        with pytest.raises(ValueError, match='velo must be float32'):
            wr.add_frame(0, {2: np.zeros((4, 4, 3), np.uint8), 3: np.zeros((4, 4, 3), np.uint8)},
                         np.zeros((3, 4)), np.zeros(30))
        with pytest.raises(ValueError, match='cameras'):
            wr.add_frame(0, {2: np.zeros((4, 4, 3), np.uint8)}, np.zeros((3, 4), np.float32),
                         np.zeros(30))
    with pytest.raises(ValueError, match='no frames'):
        write_video(tmp_path / 'v.mp4', [])
    assert not (tmp_path / 'v.mp4').exists()
    with pytest.raises(ValueError, match='frame 1'):
        write_video(tmp_path / 'v.mp4', [np.zeros((8, 8, 3), np.uint8),
                                          np.zeros((6, 8, 3), np.uint8)])


# ------------------------------------------------------------------------------------------
# tools/make_demo_data.py --kind


def test_make_demo_data_kind_kitti(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.tools import load_tool
    tool = load_tool('make_demo_data')
    out = tmp_path / 'kitti'
    assert tool.main(['--kind', 'kitti', '--out', str(out), '--drives', '1', '--frames', '2',
                      '--height', '16', '--width', '40', '--video-frames', '2',
                      '--workers', '1']) == 0
    assert 'demo kitti: 1 drives x 2 frames (40x16)' in capsys.readouterr().out
    assert len(pykitti.raw(str(out), DEMO_DATE, DRIVE)) == 2
    assert (out / VIDEO_NAME).is_file()
    with pytest.raises(SystemExit) as e:  # ScanNet (the default kind) still needs --out
        tool.main([])
    assert e.value.code == 2 and '--out is required' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(['--kind', 'kitti', '--drives', '0'])
    assert '--drives' in capsys.readouterr().err


def test_full_size_calibration_is_the_real_2011_09_26_text() -> None:
    texts = kitti_calib_texts(1242, 375)
    lines = texts['calib_cam_to_cam.txt'].splitlines()
    # shared/reference/dataset-formats.md, Appendix B (real KITTI files)
    assert ('P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 '
            '7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 '
            '2.745884e-03') in lines
    assert 'S_rect_03: 1.242000e+03 3.750000e+02' in lines
    assert texts['calib_velo_to_cam.txt'].splitlines()[2] == \
        'T: -4.069766e-03 -7.631618e-02 -2.717806e-01'
    assert len(lines) == 2 + 4 * 8
