"""Synthetic RGB-D box rooms for the Gaussian2Scene tests, consistent by construction.

A room is the inside of the box ``[0, size]^3``; its colour is a smooth function of the world
position, so points sampled on its walls and frames rendered of it (analytic ray-box
intersection from a camera inside) agree exactly.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from geo3d.structures import PointBatch


def room_color(x: Tensor) -> Tensor:
    """(M, 3) world points -> (M, 3) RGB in [0, 1]."""
    return torch.stack([0.5 + 0.4 * torch.sin(2.1 * x[:, 0] + x[:, 2]),
                        0.5 + 0.4 * torch.cos(1.7 * x[:, 1] - 0.5 * x[:, 2]),
                        0.5 + 0.4 * torch.sin(1.3 * (x[:, 0] + x[:, 1]))], 1)


def look_at(eye: Tensor, target: Tensor) -> Tensor:
    """(4, 4) OpenCV camera-to-world (x right, y down, z forward) at ``eye`` facing ``target``."""
    z = target - eye
    z = z / z.norm()
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype)
    x = torch.linalg.cross(z, -up)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    T = torch.eye(4, dtype=eye.dtype)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def intrinsics(h: int, w: int, fov_x: float = 1.2) -> Tensor:
    f = 0.5 * w / math.tan(0.5 * fov_x)
    return torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def render_box(c2w: Tensor, K: Tensor, h: int, w: int, size: float) -> tuple[Tensor, Tensor]:
    """(3, H, W) colour and (1, H, W) z-depth of the box room seen from inside."""
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing='ij')
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(h * w, dtype=torch.float64)])
    rays_cam = torch.linalg.inv(K.double()) @ pix            # z component 1: t == z-depth
    R, o = c2w[:3, :3].double(), c2w[:3, 3].double()
    d = (R @ rays_cam).T                                      # (HW, 3)
    with torch.no_grad():
        t_hi = torch.where(d > 0, (size - o) / d, torch.where(d < 0, -o / d,
                                                              torch.full_like(d, float('inf'))))
    t = t_hi.min(1).values
    hit = o + t[:, None] * d
    color = room_color(hit.float()).T.reshape(3, h, w)
    return color, t.float().reshape(1, h, w)


def box_points(n: int, size: float, gen: torch.Generator) -> dict[str, Tensor]:
    """n points on the six walls with colour and inward normals."""
    face = torch.randint(0, 6, (n,), generator=gen)
    p = torch.rand(n, 3, generator=gen) * size
    axis, high = face % 3, face >= 3
    p[torch.arange(n), axis] = torch.where(high, torch.tensor(size), torch.tensor(0.0))
    normal = torch.zeros(n, 3)
    normal[torch.arange(n), axis] = torch.where(high, -1.0, 1.0)
    return {'coord': p, 'color': room_color(p), 'normal': normal}


def make_batch(num_scenes: int = 2, frames: int = 2, h: int = 32, w: int = 40,
               points: int = 3000, size: float = 3.0, grid: float = 0.15,
               seed: int = 0) -> dict:
    """A ``scannet_frames_collate``-style ``inputs`` dict of box rooms (colour in [-1, 1])."""
    gen = torch.Generator().manual_seed(seed)
    K = intrinsics(h, w)
    images, depth, c2w, samples = [], [], [], []
    for s in range(num_scenes):
        eye = torch.tensor([1.2 + 0.3 * s, 1.4, 1.5])
        cams = []
        for f in range(frames):
            a = 2 * math.pi * f / frames + 0.4 * s
            cams.append(look_at(eye, eye + torch.tensor([math.cos(a), math.sin(a), -0.2])))
        rgbd = [render_box(c, K, h, w, size) for c in cams]
        images.append(torch.stack([r[0] for r in rgbd]))
        depth.append(torch.stack([r[1] for r in rgbd]))
        c2w.append(torch.stack(cams))
        pts = box_points(points, size, gen)
        pb = PointBatch.collate([{'coord': pts['coord'], 'feat': torch.cat(
            [pts['color'] * 2 - 1, pts['normal']], 1), 'color': pts['color'] * 2 - 1,
            'normal': pts['normal']}])
        vox, _ = pb.grid_sample(grid, mode='first')
        samples.append({'coord': vox.coord, 'feat': vox.feat, 'grid_coord': vox.grid_coord,
                        'color': vox['color'], 'normal': vox['normal']})
    images, depth, c2w = torch.stack(images), torch.stack(depth), torch.stack(c2w)
    Ks = K.expand(num_scenes, frames, 3, 3).clone()
    return {'images': images, 'depth': depth, 'camera_to_world': c2w, 'intrinsics': Ks,
            'depth_intrinsics': Ks.clone(), 'points': PointBatch.collate(samples)}
