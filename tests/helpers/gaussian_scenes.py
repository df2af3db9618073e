"""Tiny synthetic RGB-D scenes for the Gaussian2Scene stage-2 tests, exact by construction.

A scene is a coloured plane ``z = depth`` (world frame) in front of cameras near the origin
looking along +z (OpenCV axes); frames are rendered analytically (ray-plane intersection), the
points are sampled on the plane, so frames, depths and points agree exactly.
"""
from __future__ import annotations

import json
import math
import os
from typing import Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from geo3d.structures import PointBatch

ColorFn = Callable[[Tensor], Tensor]


def stripes(x: Tensor) -> Tensor:
    """(M, 3) world points -> (M, 3) smooth colours in [0.1, 0.9] varying along x and y."""
    return torch.stack([0.5 + 0.4 * torch.sin(3.0 * x[:, 0]),
                        0.5 + 0.4 * torch.cos(2.0 * x[:, 1]),
                        0.5 + 0.4 * torch.sin(2.0 * (x[:, 0] + x[:, 1]))], 1)


def constant(rgb: tuple[float, float, float]) -> ColorFn:
    return lambda x: torch.tensor(rgb, dtype=x.dtype).expand(x.shape[0], 3).clone()


def intrinsics(h: int, w: int, fov_x: float = 1.0) -> Tensor:
    """(3, 3) pinhole intrinsics, pixel centres at integers (cx = (W - 1) / 2)."""
    f = 0.5 * w / math.tan(0.5 * fov_x)
    return torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def camera(x: float, y: float, yaw: float = 0.0) -> Tensor:
    """(4, 4) camera-to-world at (x, y, 0), looking along +z rotated by ``yaw`` about y."""
    c, s = math.cos(yaw), math.sin(yaw)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    T[:3, 3] = torch.tensor([x, y, 0.0])
    return T


def render_plane(c2w: Tensor, K: Tensor, h: int, w: int, depth: float,
                 color: ColorFn) -> tuple[Tensor, Tensor]:
    """(3, H, W) colour and (1, H, W) camera-z depth of the plane ``z = depth``."""
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing='ij')
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(h * w, dtype=torch.float64)])
    rays = torch.linalg.inv(K.double()) @ pix                 # camera rays with z = 1
    R, o = c2w[:3, :3].double(), c2w[:3, 3].double()
    d = (R @ rays).T                                           # (HW, 3) world directions
    t = (depth - o[2]) / d[:, 2]                               # ray parameter = camera z
    hit = o + t[:, None] * d
    return color(hit.float()).T.reshape(3, h, w), t.float().reshape(1, h, w)


def plane_points(n: int, depth: float, half: float, color: ColorFn,
                 gen: torch.Generator) -> dict[str, Tensor]:
    xy = (torch.rand(n, 2, generator=gen) * 2 - 1) * half
    coord = torch.cat([xy, torch.full((n, 1), depth)], 1)
    normal = torch.tensor([0.0, 0.0, -1.0]).expand(n, 3).clone()
    return {'coord': coord, 'color': color(coord), 'normal': normal}


def plane_batch(num_scenes: int = 1, frames: int = 2, h: int = 24, w: int = 32,
                points: int = 3000, depth: float = 2.02, half: float = 1.6,
                grid: float = 0.1, color: ColorFn = stripes, seed: int = 0) -> dict:
    """A ``scannet_frames_collate``-style ``inputs`` dict of plane scenes.

    ``points`` is a voxelised :class:`PointBatch` (``grid_size`` set) with ``feat`` = colour in
    [-1, 1] + normal (6 channels) and the extra ``color`` in [-1, 1] (NormalizeColor).
    """
    gen = torch.Generator().manual_seed(seed)
    K = intrinsics(h, w)
    images, depths, poses, samples = [], [], [], []
    for s in range(num_scenes):
        cams = [camera(0.15 * f - 0.1 * s, 0.05 * f, 0.08 * (f - s)) for f in range(frames)]
        rgbd = [render_plane(c, K, h, w, depth, color) for c in cams]
        images.append(torch.stack([r[0] for r in rgbd]))
        depths.append(torch.stack([r[1] for r in rgbd]))
        poses.append(torch.stack(cams))
        pts = plane_points(points, depth, half, color, gen)
        raw = PointBatch.collate([{'coord': pts['coord'], 'feat': torch.cat(
            [pts['color'] * 2 - 1, pts['normal']], 1), 'color': pts['color'] * 2 - 1}])
        vox, _ = raw.grid_sample(grid, mode='first')
        samples.append({'coord': vox.coord, 'feat': vox.feat, 'grid_coord': vox.grid_coord,
                        'color': vox['color'], 'grid_size': grid})
    Ks = K.expand(num_scenes, frames, 3, 3).clone()
    return {'images': torch.stack(images), 'depth': torch.stack(depths),
            'camera_to_world': torch.stack(poses), 'intrinsics': Ks,
            'depth_intrinsics': Ks.clone(), 'points': PointBatch.collate(samples),
            'frame_ids': torch.arange(frames).expand(num_scenes, frames).clone()}


def write_frames_root(root: str, splits: dict[str, list[str]], frames: int = 5, h: int = 30,
                      w: int = 40, points: int = 2500, seed: int = 0) -> str:
    """A processed ScanNet root with RGB-D frames (``ScanNetFramesDataset`` layout) of plane
    scenes: ``splits/<split>.txt``, ``scenes/<id>/{coord,color,normal,axis_align_matrix}.npy``,
    ``scenes/<id>/frames/{color/*.jpg, depth/*.png, poses.npy, frame_ids.npy, meta.json}``."""
    gen = torch.Generator().manual_seed(seed)
    K = intrinsics(h, w)
    os.makedirs(os.path.join(root, 'splits'), exist_ok=True)
    for split, scenes in splits.items():
        with open(os.path.join(root, 'splits', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(scenes) + '\n')
        for k, scene in enumerate(scenes):
            d = os.path.join(root, 'scenes', scene)
            fd = os.path.join(d, 'frames')
            os.makedirs(os.path.join(fd, 'color'), exist_ok=True)
            os.makedirs(os.path.join(fd, 'depth'), exist_ok=True)
            depth = 1.8 + 0.2 * k
            pts = plane_points(points, depth, 1.6, stripes, gen)
            np.save(os.path.join(d, 'coord.npy'), pts['coord'].numpy())
            np.save(os.path.join(d, 'color.npy'), (pts['color'] * 255).numpy())
            np.save(os.path.join(d, 'normal.npy'), pts['normal'].numpy())
            np.save(os.path.join(d, 'axis_align_matrix.npy'), np.eye(4))
            poses = []
            for i in range(frames):
                c2w = camera(0.1 * i - 0.2, 0.04 * i, 0.06 * (i - 2))
                rgb, z = render_plane(c2w, K, h, w, depth, stripes)
                img = (rgb.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
                cv2.imwrite(os.path.join(fd, 'color', f'{i:06d}.jpg'), img[..., ::-1],
                            [cv2.IMWRITE_JPEG_QUALITY, 98])
                cv2.imwrite(os.path.join(fd, 'depth', f'{i:06d}.png'),
                            (z[0].numpy() * 1000 + 0.5).astype(np.uint16))
                poses.append(c2w.numpy())
            np.save(os.path.join(fd, 'poses.npy'), np.stack(poses))
            np.save(os.path.join(fd, 'frame_ids.npy'), np.arange(frames, dtype=np.int64))
            meta = {'format': 1, 'num_frames': frames, 'color_size': [w, h],
                    'depth_size': [w, h], 'intrinsic_color': K.tolist(),
                    'intrinsic_depth': K.tolist()}
            with open(os.path.join(fd, 'meta.json'), 'w') as f:
                json.dump(meta, f)
    return root
