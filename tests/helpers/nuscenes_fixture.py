"""A tiny synthetic nuScenes ``v1.0-mini`` that the real nuscenes-devkit 1.2.0 loads.

Follows the verified generator of ``shared/reference/dataset-formats.md`` (§4, Appendix A): the
13 JSON tables, ``samples/`` + ``sweeps/`` files named ``<logfile>__<CHANNEL>__<timestamp>``,
the real CAM_FRONT / LIDAR_TOP calibration of log n015 (camera intrinsics scaled to the tiny
image), a map PNG that only has to exist, and nuScenes-lidarseg (``lidarseg.json``, the
32-row ``category.json`` with ``index``, ``lidarseg/v1.0-mini/<token>_lidarseg.bin`` uint8).

Every scene is a short drive (ego at ``speed`` m/s with a constant ``yaw_rate``) in front of
static geometry given in GLOBAL coordinates, so tests can compute depths in closed form:

* a ground plane ``z = 0`` (fine class ``flat.driveable_surface``),
* a vertical wall ``x = origin_x + WALL_DIST`` (``static.manmade``),
* a thin pole ``x = origin_x + POLE_DIST``, ``|y - origin_y| <= POLE_HALF_WIDTH``
  (``movable_object.barrier``), in front of the wall: pixels it covers see both,
* a few ego-vehicle returns inside the 1 m ``remove_close`` box (``vehicle.ego``), in the
  LIDAR_TOP frame.

Every LIDAR_TOP sweep holds the same static points (in that sweep's sensor frame, same order),
so aggregated sweeps put copies of a static point on top of each other. Per scene: key frames
every 0.5 s; LIDAR_TOP: one sweep 0.25 s before each key frame; CAM_FRONT: key frame 10 ms
before the sample, two sweeps 1/6 s apart before each key frame.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from pyquaternion import Quaternion

VERSION = 'v1.0-mini'
FULL_W, FULL_H = 1600, 900
# real calibration of log n015 (dataset-formats.md §4.2)
CAM_T = [1.70079118954, 0.0159456324149, 1.51095763913]
CAM_Q = [0.4998015430569128, -0.5030316162024876, 0.4997798114386805, -0.49737083824542755]
K_FULL = [[1266.417203046554, 0.0, 816.2670197447984], [0.0, 1266.417203046554, 491.50706579294757],
          [0.0, 0.0, 1.0]]
LIDAR_T = [0.943713, 0.0, 1.84023]
LIDAR_Q = [0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817]

WALL_DIST = 30.0        # wall plane x = origin_x + WALL_DIST (global)
POLE_DIST = 12.0        # pole plane x = origin_x + POLE_DIST
POLE_HALF_WIDTH = 0.6
POLE_HEIGHT = 4.0
WALL_HEIGHT = 8.0
SCENE_GAP_US = 1_000_000_000

# nuScenes-lidarseg fine classes in index order (the devkit's colormap order, index 0..31)
LIDARSEG_CLASSES = (
    'noise', 'animal', 'human.pedestrian.adult', 'human.pedestrian.child',
    'human.pedestrian.construction_worker', 'human.pedestrian.personal_mobility',
    'human.pedestrian.police_officer', 'human.pedestrian.stroller',
    'human.pedestrian.wheelchair', 'movable_object.barrier', 'movable_object.debris',
    'movable_object.pushable_pullable', 'movable_object.trafficcone',
    'static_object.bicycle_rack', 'vehicle.bicycle', 'vehicle.bus.bendy', 'vehicle.bus.rigid',
    'vehicle.car', 'vehicle.construction', 'vehicle.emergency.ambulance',
    'vehicle.emergency.police', 'vehicle.motorcycle', 'vehicle.trailer', 'vehicle.truck',
    'flat.driveable_surface', 'flat.other', 'flat.sidewalk', 'flat.terrain', 'static.manmade',
    'static.other', 'static.vegetation', 'vehicle.ego')
FINE = {name: i for i, name in enumerate(LIDARSEG_CLASSES)}
# part -> fine lidarseg class index
PART_CLASS = {'ground': FINE['flat.driveable_surface'], 'wall': FINE['static.manmade'],
              'pole': FINE['movable_object.barrier'], 'ego': FINE['vehicle.ego']}
PART_INTENSITY = {'ground': 20.0, 'wall': 100.0, 'pole': 200.0, 'ego': 5.0}
STATIC_PARTS = ('pole', 'ground', 'wall')  # order of the points in every sweep, then 'ego'


@dataclass(frozen=True)
class SceneSpec:
    """One synthetic scene: official mini names put it in mini_train / mini_val."""
    name: str
    description: str
    speed: float = 5.0          # m/s along the heading
    yaw_rate: float = 0.0       # rad/s


DEFAULT_SCENES = (
    SceneSpec('scene-0061', 'Parked truck, construction, intersection, turn left'),
    SceneSpec('scene-0103', 'Ped crossing, cyclist, day', yaw_rate=0.2),
    SceneSpec('scene-0916', 'Night, rain, parking lot, peds', speed=4.0, yaw_rate=-0.1),
)


def token(*parts: object) -> str:
    """Deterministic 32-hex token."""
    return hashlib.md5('/'.join(str(p) for p in parts).encode()).hexdigest()


def pose_matrix(translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    """(4, 4) float64 ``[R | t]`` of a nuScenes record (quaternion w, x, y, z)."""
    m = np.eye(4)
    m[:3, :3] = Quaternion(rotation).rotation_matrix
    m[:3, 3] = translation
    return m


@dataclass
class FrameRecord:
    """One written sample_data row (``global_from_sensor`` computed from the fixture's motion)."""
    token: str
    channel: str
    timestamp: int
    filename: str
    is_key_frame: bool
    sample_token: str
    global_from_ego: np.ndarray
    global_from_sensor: np.ndarray
    chain_index: int


@dataclass
class NuScenesFixture:
    """What :func:`write_nuscenes_mini` wrote; geometry helpers for closed-form checks."""
    root: Path
    version: str
    scenes: list[SceneSpec]
    width: int
    height: int
    K: np.ndarray                                   # (3, 3) intrinsics of the tiny image
    origins: list[np.ndarray]                       # per scene (x0, y0) in global
    cams: dict[str, list[FrameRecord]] = field(default_factory=dict)    # scene -> chain
    lidars: dict[str, list[FrameRecord]] = field(default_factory=dict)  # scene -> chain
    samples: dict[str, list[str]] = field(default_factory=dict)         # scene -> tokens
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # part -> global pts (or ego)
    with_lidarseg: bool = True

    def scene_index(self, name: str) -> int:
        return [s.name for s in self.scenes].index(name)

    def key_cams(self, scene: str) -> list[FrameRecord]:
        return [r for r in self.cams[scene] if r.is_key_frame]

    def key_lidars(self, scene: str) -> list[FrameRecord]:
        return [r for r in self.lidars[scene] if r.is_key_frame]

    def static_points(self, scene: str) -> np.ndarray:
        """(M, 3) global static points of ``scene`` in sweep order (:data:`STATIC_PARTS`)."""
        x0, y0 = self.origins[self.scene_index(scene)]
        pts = np.concatenate([self.parts[p] for p in STATIC_PARTS])
        return pts + np.array([x0, y0, 0.0])

    def part_slices(self) -> dict[str, slice]:
        """Rows of each part in every LIDAR_TOP file (:data:`STATIC_PARTS`, then ``'ego'``)."""
        out, start = {}, 0
        for p in STATIC_PARTS + ('ego',):
            out[p] = slice(start, start + len(self.parts[p]))
            start += len(self.parts[p])
        return out

    def ray_hit(self, scene: str, cam: FrameRecord, u: float, v: float, normal: Sequence[float],
                point: Sequence[float]) -> tuple[float, np.ndarray]:
        """Where the ray through pixel ``(u, v)`` of ``cam`` meets the plane through ``point``
        (relative to the scene origin, global axes) with ``normal``: (camera depth z, hit point
        relative to the origin). float64 closed form from the fixture's own poses."""
        x0, y0 = self.origins[self.scene_index(scene)]
        origin = np.array([x0, y0, 0.0])
        ray_cam = np.linalg.solve(self.K, np.array([u, v, 1.0]))  # camera z = 1
        m = cam.global_from_sensor
        c, d = m[:3, 3] - origin, m[:3, :3] @ ray_cam
        n = np.asarray(normal, float)
        s = float(n @ (np.asarray(point, float) - c) / (n @ d))
        return s, c + s * d


def _yaw_quat(yaw: float) -> list[float]:
    q = Quaternion(axis=[0, 0, 1], angle=yaw)
    return [q.w, q.x, q.y, q.z]


def _ego_pose(spec: SceneSpec, origin: np.ndarray, t: float) -> tuple[list[float], list[float]]:
    """Translation and rotation of the ego at ``t`` s after the first sample (constant speed
    and yaw rate from heading 0 at t = 0)."""
    w, v = spec.yaw_rate, spec.speed
    yaw = w * t
    if abs(w) < 1e-12:
        x, y = v * t, 0.0
    else:
        x, y = v / w * np.sin(yaw), -v / w * (np.cos(yaw) - 1.0)
    return [float(origin[0] + x), float(origin[1] + y), 0.0], _yaw_quat(yaw)


def _grid(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g1, g2 = np.meshgrid(a, b, indexing='ij')
    return g1.ravel(), g2.ravel()


def _parts() -> dict[str, np.ndarray]:
    """Static geometry relative to the scene origin, and ego returns in the LIDAR_TOP frame."""
    gx, gy = _grid(np.arange(-10.0, WALL_DIST - 0.5, 0.8), np.arange(-12.0, 12.01, 0.8))
    ground = np.stack([gx, gy, np.zeros_like(gx)], 1)
    wy, wz = _grid(np.arange(-20.0, 20.01, 0.5), np.arange(0.0, WALL_HEIGHT + 0.01, 0.5))
    wall = np.stack([np.full_like(wy, WALL_DIST), wy, wz], 1)
    py, pz = _grid(np.arange(-POLE_HALF_WIDTH, POLE_HALF_WIDTH + 1e-3, 0.1),
                   np.arange(0.0, POLE_HEIGHT + 1e-3, 0.1))
    pole = np.stack([np.full_like(py, POLE_DIST), py, pz], 1)
    ego = np.array([[0.5, 0.3, -0.6], [-0.4, 0.6, -0.8], [0.2, -0.7, -1.0],
                    [-0.6, -0.2, -0.5], [0.8, 0.8, -1.2], [0.1, 0.1, -1.5]])
    return {'ground': ground, 'wall': wall, 'pole': pole, 'ego': ego}


def _image(seed: int, width: int, height: int) -> Image.Image:
    """Smooth random texture (JPEG-friendly), different per frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 225, (height // 6 + 2, width // 6 + 2, 3)).astype(np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.BILINEAR)


def write_nuscenes_mini(root: str | Path, scenes: Sequence[SceneSpec] = DEFAULT_SCENES,
                        num_keyframes: int = 3, cam_sweeps: int = 2, width: int = 96,
                        height: int = 54, with_lidarseg: bool = True, seed: int = 0
                        ) -> NuScenesFixture:
    """Write the synthetic v1.0-mini under ``root`` (see the module docstring).

    ``width`` x ``height`` is the CAM_FRONT size; the real intrinsics are scaled by
    ``width / 1600`` and ``height / 900`` (keep the 16:9 ratio for square pixels).
    """
    root = Path(root)
    tdir = root / VERSION
    for d in ('samples/LIDAR_TOP', 'samples/CAM_FRONT', 'sweeps/LIDAR_TOP', 'sweeps/CAM_FRONT',
              'maps', f'lidarseg/{VERSION}', VERSION):
        (root / d).mkdir(parents=True, exist_ok=True)
    K = np.array(K_FULL)
    K[0] *= width / FULL_W
    K[1] *= height / FULL_H
    parts = _parts()
    fx = NuScenesFixture(root, VERSION, list(scenes), width, height, K,
                         [np.array([400.0 + 1000.0 * i, 1100.0 + 50.0 * i])
                          for i in range(len(scenes))],
                         parts=parts, with_lidarseg=with_lidarseg)
    lid_s, cam_s, lid_cs, cam_cs = (token('sensor', n) for n in ('lid', 'cam', 'lidcs', 'camcs'))
    sensor = [{'token': lid_s, 'channel': 'LIDAR_TOP', 'modality': 'lidar'},
              {'token': cam_s, 'channel': 'CAM_FRONT', 'modality': 'camera'}]
    calibrated_sensor = [
        {'token': lid_cs, 'sensor_token': lid_s, 'translation': LIDAR_T, 'rotation': LIDAR_Q,
         'camera_intrinsic': []},
        {'token': cam_cs, 'sensor_token': cam_s, 'translation': CAM_T, 'rotation': CAM_Q,
         'camera_intrinsic': K.tolist()}]
    ego_from_lidar = pose_matrix(LIDAR_T, LIDAR_Q)
    ego_from_cam = pose_matrix(CAM_T, CAM_Q)
    logs, scene_rows, sample_rows, ego_rows, sd_rows, seg_rows = [], [], [], [], [], []
    # pole before wall: a pixel seeing both gets the wall point LAST, so a last-write raster
    # (the devkit's rendering) would keep the far wall and a minimum keeps the pole
    static_parts = STATIC_PARTS
    labels = np.concatenate([np.full(len(parts[p]), PART_CLASS[p], np.uint8)
                             for p in static_parts + ('ego',)])
    intensity = np.concatenate([np.full(len(parts[p]), PART_INTENSITY[p], np.float32)
                                for p in static_parts + ('ego',)])
    t_base = 1532402927647951
    for si, spec in enumerate(scenes):
        origin = fx.origins[si]
        night = 'night' in spec.description.lower()
        logfile = f'n015-2018-{"11-21-19-38-26" if night else "07-24-11-22-45"}+0800-{si}'
        log_t = token('log', si)
        logs.append({'token': log_t, 'logfile': logfile, 'vehicle': 'n015',
                     'date_captured': '2018-07-24', 'location': 'singapore-onenorth'})
        t0 = t_base + si * SCENE_GAP_US
        st = [token('sample', si, k) for k in range(num_keyframes)]
        scene_t = token('scene', si)
        for k in range(num_keyframes):
            sample_rows.append({'token': st[k], 'timestamp': t0 + 500_000 * k,
                                'scene_token': scene_t, 'prev': st[k - 1] if k else '',
                                'next': st[k + 1] if k + 1 < num_keyframes else ''})
        scene_rows.append({'token': scene_t, 'log_token': log_t, 'nbr_samples': num_keyframes,
                           'first_sample_token': st[0], 'last_sample_token': st[-1],
                           'name': spec.name, 'description': spec.description})
        fx.samples[spec.name] = st

        def add_frame(channel: str, ts: int, k: int, key: bool, fname: str, ego_from_sensor,
                      cs_token: str, wh: tuple[int, int]) -> FrameRecord:
            tr, rot = _ego_pose(spec, origin, (ts - t0) * 1e-6)
            ep = token('ego', channel, ts)
            ego_rows.append({'token': ep, 'timestamp': ts, 'rotation': rot, 'translation': tr})
            rec = FrameRecord(token('sd', channel, ts), channel, ts, fname, key, st[k],
                              pose_matrix(tr, rot), pose_matrix(tr, rot) @ ego_from_sensor, -1)
            sd_rows.append({'token': rec.token, 'sample_token': st[k], 'ego_pose_token': ep,
                            'calibrated_sensor_token': cs_token, 'timestamp': ts,
                            'fileformat': 'pcd' if channel == 'LIDAR_TOP' else 'jpg',
                            'is_key_frame': key, 'height': wh[1], 'width': wh[0],
                            'filename': fname})
            return rec

        lid_chain: list[FrameRecord] = []
        cam_chain: list[FrameRecord] = []
        for k in range(num_keyframes):
            ts_k = t0 + 500_000 * k
            for key, ts in ((False, ts_k - 250_000), (True, ts_k)):
                folder = 'samples' if key else 'sweeps'
                fname = f'{folder}/LIDAR_TOP/{logfile}__LIDAR_TOP__{ts}.pcd.bin'
                rec = add_frame('LIDAR_TOP', ts, k, key, fname, ego_from_lidar, lid_cs, (0, 0))
                lidar_from_global = np.linalg.inv(rec.global_from_sensor)
                static = np.concatenate([parts[p] for p in static_parts]) + \
                    np.array([origin[0], origin[1], 0.0])
                pts = (lidar_from_global[:3, :3] @ static.T).T + lidar_from_global[:3, 3]
                pts = np.concatenate([pts, parts['ego']])
                ring = np.arange(len(pts)) % 32
                np.concatenate([pts, intensity[:, None], ring[:, None]], 1).astype(
                    np.float32).tofile(root / fname)
                if key and with_lidarseg:
                    seg_name = f'lidarseg/{VERSION}/{rec.token}_lidarseg.bin'
                    labels.tofile(root / seg_name)
                    seg_rows.append({'token': token('seg', rec.token),
                                     'sample_data_token': rec.token, 'filename': seg_name})
                lid_chain.append(rec)
            cam_key_ts = ts_k - 10_000
            for j in range(cam_sweeps, -1, -1):
                ts = cam_key_ts - j * 166_667
                key = j == 0
                folder = 'samples' if key else 'sweeps'
                fname = f'{folder}/CAM_FRONT/{logfile}__CAM_FRONT__{ts}.jpg'
                rec = add_frame('CAM_FRONT', ts, k, key, fname, ego_from_cam, cam_cs,
                                (width, height))
                _image(seed * 7919 + ts % 100_003, width, height).save(root / fname, quality=90)
                cam_chain.append(rec)
        for chain in (lid_chain, cam_chain):
            rows = {r['token']: r for r in sd_rows}
            for i, rec in enumerate(chain):
                rec.chain_index = i
                rows[rec.token]['prev'] = chain[i - 1].token if i else ''
                rows[rec.token]['next'] = chain[i + 1].token if i + 1 < len(chain) else ''
        fx.lidars[spec.name], fx.cams[spec.name] = lid_chain, cam_chain

    map_png = 'maps/53992ee3023e5494b90c316c183be829.png'
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / map_png)
    category = [{'token': token('cat', n), 'name': n, 'description': '', 'index': i}
                for i, n in enumerate(LIDARSEG_CLASSES)]
    tables = {
        'category': category,
        'attribute': [{'token': token('attr'), 'name': 'vehicle.moving', 'description': ''}],
        'visibility': [{'token': str(i + 1), 'level': lv, 'description': ''}
                       for i, lv in enumerate(['v0-40', 'v40-60', 'v60-80', 'v80-100'])],
        'instance': [], 'sample_annotation': [],
        'sensor': sensor, 'calibrated_sensor': calibrated_sensor, 'ego_pose': ego_rows,
        'log': logs, 'scene': scene_rows, 'sample': sample_rows, 'sample_data': sd_rows,
        'map': [{'token': token('map'), 'log_tokens': [lg['token'] for lg in logs],
                 'category': 'semantic_prior', 'filename': map_png}],
    }
    if with_lidarseg:
        tables['lidarseg'] = seg_rows
    for name, rows in tables.items():
        (tdir / f'{name}.json').write_text(json.dumps(rows, indent=0))
    return fx
