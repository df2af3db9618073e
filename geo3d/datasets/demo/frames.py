"""RGB-D frames of a demo room: a camera trajectory inside the room, colour + depth rendered by
ray casting the room's mesh, written as ``<scene>.sens`` in ScanNet's real format.

Cameras follow OpenCV (x right, y down, z forward), stand 1.3-1.5 m above the floor at free
spots on part of an ellipse around the room centre, and look slightly down across the room, so
consecutive frames overlap (about 10 cm and 5 degrees apart with 30 frames) and the views see
the walls and furniture of the far side.
Poses are camera-to-world in the RAW scan frame (that of the mesh and of ``coord.npy``).

Rendering uses open3d's ``RaycastingScene`` (Embree): one ray per pixel centre with direction
``R K^-1 (u, v, 1)``, so the hit distance is the z-depth; colour is the barycentric
interpolation of the hit triangle's vertex colours. Rays that leave through a scan hole give
depth 0 (no measurement, as a real sensor) and black colour.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .scene import DemoRoom, DemoScene

__all__ = ['demo_intrinsics', 'camera_trajectory', 'render_rgbd', 'write_demo_sens',
           'SCANNET_DEPTH_K']

# ScanNet's depth camera (the .txt ``fx_depth``, ``mx_depth`` ... of a real scan), at 640 x 480
SCANNET_DEPTH_K = (571.623718, 571.623718, 319.5, 239.5, 640, 480)


def demo_intrinsics(width: int, height: int) -> np.ndarray:
    """(3, 3) ScanNet depth-camera intrinsics scaled to ``width x height`` (pixel centres at
    integers: ``c' = (c + 0.5) s - 0.5``)."""
    fx, fy, cx, cy, w0, h0 = SCANNET_DEPTH_K
    sx, sy = width / w0, height / h0
    return np.array([[fx * sx, 0.0, (cx + 0.5) * sx - 0.5],
                     [0.0, fy * sy, (cy + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test: (K, 2) polygon, (M, 2) points -> (M,) bool."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    a, b = poly, np.roll(poly, -1, axis=0)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide='ignore', invalid='ignore'):
        xint = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (crosses & (x < xint)).sum(1) % 2 == 1


def _raycaster(coord: np.ndarray, faces: np.ndarray):
    import open3d as o3d
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(coord, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(faces, np.uint32)))
    return scene


def _cast(scene, rays: np.ndarray) -> dict[str, np.ndarray]:
    import open3d as o3d
    out = scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays, np.float32)), nthreads=1)
    return {k: out[k].numpy() for k in ('t_hit', 'primitive_ids', 'primitive_uvs')}


def _look(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """(3, 3) camera-to-world rotation: columns = camera x (right), y (down), z (forward)."""
    f = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                  math.sin(pitch)])
    r = np.array([math.sin(yaw), -math.cos(yaw), 0.0])  # f x up, normalised (up = +z)
    d = np.cross(f, r)
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        r, d = c * r + s * d, -s * r + c * d
    return np.stack([r, d, f], axis=1)


def _segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M,) distance of (M, 2) points to the nearest of the segments a[k] -> b[k] ((K, 2))."""
    ab = b - a                                                               # (K, 2)
    ap = pts[:, None, :] - a[None]                                           # (M, K, 2)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(1)


def _clearance(room: DemoRoom, pts: np.ndarray) -> np.ndarray:
    """Free distance (m) of aligned (M, 2) points to the walls and furniture footprints (0
    inside a footprint)."""
    poly = np.asarray(room.polygon, np.float64)
    d = _segment_distance(pts, poly, np.roll(poly, -1, axis=0))
    for fp in room.footprints:
        fp = np.asarray(fp, np.float64)
        d = np.minimum(d, _segment_distance(pts, fp, np.roll(fp, -1, axis=0)))
        d[_inside(fp, pts)] = 0.0
    return d


def _free_spot(room: DemoRoom, target: np.ndarray, centre: np.ndarray,
               fallback: np.ndarray, min_clear: float = 0.35) -> np.ndarray:
    """The first point from ``target`` towards ``centre`` (10 steps) inside the room and at
    least ``min_clear`` from walls and furniture; ``fallback`` if none is."""
    steps = target[None] + np.linspace(0.0, 1.0, 11)[:, None] * (centre - target)[None]
    ok = _inside(np.asarray(room.polygon, np.float64), steps) & (
        _clearance(room, steps) >= min_clear)
    return steps[int(np.argmax(ok))] if ok.any() else fallback


def camera_trajectory(room: DemoRoom, num_frames: int, rng: np.random.Generator
                      ) -> np.ndarray:
    """Camera-to-world poses (F, 4, 4) float64 in the RAW frame for ``num_frames`` views.

    The camera walks part of an ellipse around the room centre (semi-axes 30 % of the room's
    extent; 0.6-1.0 half-turns in all), at free spots (0.35 m from walls and furniture
    footprints), and looks across the room towards the far side (yaw sweeping +-20 degrees
    around the centre direction, 12-22 degrees down, from 1.3-1.5 m height with a little
    height / pitch / roll wobble), so the views overlap and see walls and furniture at
    1-6 m.
    """
    poly = np.asarray(room.polygon, np.float64)
    lo, hi = poly.min(0), poly.max(0)
    cand = rng.uniform(lo, hi, size=(128, 2))
    cand = cand[_inside(poly, cand)]
    clear = _clearance(room, cand) if len(cand) else np.zeros(0)
    free = cand[clear >= 0.35] if (clear >= 0.35).any() else poly.mean(0, keepdims=True)
    centre = free.mean(0)                                   # centre of the free floor
    semi = 0.3 * (hi - lo)
    theta0 = float(rng.uniform(0, 2 * math.pi))
    spin = 1.0 if rng.random() < 0.5 else -1.0
    arc = float(rng.uniform(0.6, 1.0)) * math.pi
    h0 = float(rng.uniform(1.3, 1.5))
    pitch0 = -math.radians(float(rng.uniform(12.0, 22.0)))
    phase = float(rng.uniform(0, 2 * math.pi))
    inv = np.linalg.inv(room.align)
    poses = np.zeros((num_frames, 4, 4))
    for i in range(num_frames):
        s = i / max(num_frames - 1, 1)
        th = theta0 + spin * arc * s
        target = centre + semi * np.array([math.cos(th), math.sin(th)])
        fallback = free[int(np.argmin(np.linalg.norm(free - target, axis=1)))]
        xy = _free_spot(room, target, centre, fallback)
        pos = np.array([xy[0], xy[1], h0 + 0.08 * math.sin(2 * math.pi * s + phase)])
        rot = _look(th + math.pi + math.radians(20.0) * math.sin(3 * math.pi * s + phase),
                    pitch0 + math.radians(4.0) * math.sin(4 * math.pi * s + phase),
                    math.radians(float(rng.normal(0.0, 1.0))))
        aligned = np.eye(4)
        aligned[:3, :3], aligned[:3, 3] = rot, pos
        poses[i] = inv @ aligned
    return poses


def render_rgbd(coord: np.ndarray, color: np.ndarray, faces: np.ndarray, poses: np.ndarray,
                K: np.ndarray, width: int, height: int, scene=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast colour and depth images of a vertex-coloured triangle mesh.

    Args:
        coord: (N, 3) vertices; color: (N, 3) uint8; faces: (T, 3) int.
        poses: (F, 4, 4) camera-to-world (OpenCV camera), same frame as ``coord``.
        K: (3, 3) pixel intrinsics at ``width x height``.

    Returns:
        colour (F, H, W, 3) uint8 RGB (black where no surface), depth (F, H, W) float32
        z-depth in metres (0 where no surface).
    """
    scene = _raycaster(coord, faces) if scene is None else scene
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                       indexing='ij')
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1)                   # (HW, 3)
    cam_dirs = pix @ np.linalg.inv(np.asarray(K, np.float64)).T                  # z = 1
    cols = np.asarray(color, np.float64)
    tri = np.asarray(faces, np.int64)
    rgb = np.zeros((len(poses), height, width, 3), np.uint8)
    depth = np.zeros((len(poses), height, width), np.float32)
    for i, pose in enumerate(np.asarray(poses, np.float64)):
        dirs = cam_dirs @ pose[:3, :3].T
        origin = np.broadcast_to(pose[:3, 3], dirs.shape)
        hit = _cast(scene, np.concatenate([origin, dirs], 1))
        t = hit['t_hit']
        ok = np.isfinite(t)
        prim = hit['primitive_ids'][ok].astype(np.int64)
        uv = hit['primitive_uvs'][ok].astype(np.float64)
        w = np.column_stack([1.0 - uv.sum(1), uv[:, 0], uv[:, 1]])               # (M, 3)
        c = np.einsum('mk,mkc->mc', w, cols[tri[prim]])
        img = np.zeros((height * width, 3), np.uint8)
        img[ok] = np.clip(np.rint(c), 0, 255).astype(np.uint8)
        rgb[i] = img.reshape(height, width, 3)
        depth[i] = np.where(ok, t, 0.0).reshape(height, width)
    return rgb, depth


def write_demo_sens(path: str | os.PathLike[str], scene: DemoScene, num_frames: int,
                    size: tuple[int, int] = (160, 120), seed: int | list[int] = 0,
                    invalid_every: int = 0) -> np.ndarray:
    """Render ``num_frames`` RGB-D views of ``scene`` and write them as a ``.sens`` file.

    Args:
        path: output ``<scene>.sens``.
        scene: a :class:`DemoScene` with its ``room``.
        num_frames: frames to render.
        size: ``(width, height)`` of colour and depth (one camera, ScanNet depth intrinsics
            scaled to it).
        seed: RNG seed of the trajectory (independent of the scene's own RNG).
        invalid_every: if > 0, every such frame (1-based) gets an all -inf pose, as ScanNet
            marks frames whose tracking failed (for tests of the frame sampling).

    Returns:
        (3, 3) intrinsics used for colour and depth.
    """
    from geo3d.converters.scannet.sens import SensWriter
    if scene.room is None:
        raise ValueError('the demo scene has no room geometry (made by an old generator?)')
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    width, height = size
    K = demo_intrinsics(width, height)
    rng = np.random.default_rng(seed)
    poses = camera_trajectory(scene.room, num_frames, rng)
    rgb, depth = render_rgbd(scene.coord, scene.color, scene.faces, poses, K, width, height)
    depth_mm = np.clip(np.rint(depth * 1000.0), 0, 65535).astype(np.uint16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with SensWriter(path, color_size=(width, height), depth_size=(width, height),
                    intrinsic_color=K, intrinsic_depth=K) as w:
        for i in range(num_frames):
            pose = poses[i]
            if invalid_every > 0 and (i + 1) % invalid_every == 0:
                pose = np.full((4, 4), -np.inf)
            w.add(rgb[i], depth_mm[i], pose)
    return K
