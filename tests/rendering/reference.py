"""Independent references for the Gaussian rasterizer tests: scenes and a slow dense renderer.

The dense renderer is written from the 3DGS equations, not from geo3d's code: its own
quaternion->matrix, EWA projection and a per-Gaussian loop over ALL pixels that mirrors the
CUDA kernel's per-pixel loop (skip alpha < 1/255, clamp 0.999, exclusive stop at T <= 1e-4).
It does not clamp the perspective Jacobian, so scenes keep their Gaussians inside the view.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def quat_to_matrix(q: Tensor) -> Tensor:
    """(N, 4) wxyz quaternions (any norm) -> (N, 3, 3) rotation matrices."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        torch.stack([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], -1),
    ], -2)


def look_at(eye: list[float], target: list[float], dtype: torch.dtype = torch.float64) -> Tensor:
    """(4, 4) world->camera matrix (OpenCV axes) of a camera at ``eye`` looking at ``target``."""
    eye_t, tgt = torch.tensor(eye, dtype=dtype), torch.tensor(target, dtype=dtype)
    fwd = (tgt - eye_t) / (tgt - eye_t).norm()
    up = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    R = torch.stack([right, down, fwd])  # rows: camera axes in world coordinates
    V = torch.eye(4, dtype=dtype)
    V[:3, :3] = R
    V[:3, 3] = -R @ eye_t
    return V


def intrinsics(width: int, height: int, fov_deg: float = 60.0,
               dtype: torch.dtype = torch.float64) -> Tensor:
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)


def random_scene(n: int, seed: int = 0, dtype: torch.dtype = torch.float64,
                 opaque_share: float = 0.3, max_scale: float = 0.18) -> dict[str, Tensor]:
    """``n`` Gaussians in a 2 m cube around the origin, a share of them nearly opaque."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2.0
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = 0.03 + (max_scale - 0.03) * torch.rand(n, 3, generator=g, dtype=dtype)
    opac = 0.1 + 0.8 * torch.rand(n, generator=g, dtype=dtype)
    opaque = torch.rand(n, generator=g, dtype=dtype) < opaque_share
    opac = torch.where(opaque, torch.ones_like(opac), opac)
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    return dict(means=means, quats=quats, scales=scales, opacities=opac, colors=colors)


def dense_render(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                 colors: Tensor, viewmat: Tensor, K: Tensor, width: int, height: int,
                 near_plane: float = 0.01,
                 eps2d: float = 0.3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One camera, every pixel against every Gaussian: (H, W, D) rgb, (H, W, 1) ED depth,
    (H, W, 1) alpha and (H, W) bool "stopped at T <= 1e-4". Slow (O(pixels x Gaussians) with
    a Python loop); tiny scenes only."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    mu_c = means @ R.T + t  # (N, 3)
    rot = quat_to_matrix(quats)
    cov = rot @ torch.diag_embed(scales ** 2) @ rot.transpose(-1, -2)
    cov_c = R @ cov @ R.T
    x, y, z = mu_c.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    zero = torch.zeros_like(z)
    J = torch.stack([torch.stack([fx / z, zero, -fx * x / z ** 2], -1),
                     torch.stack([zero, fy / z, -fy * y / z ** 2], -1)], -2)  # (N, 2, 3)
    cov2d = J @ cov_c @ J.transpose(-1, -2) + eps2d * torch.eye(2, dtype=means.dtype)
    conic = torch.linalg.inv(cov2d)
    mean2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)

    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype) + 0.5,
                            torch.arange(width, dtype=means.dtype) + 0.5, indexing='ij')
    T = torch.ones(height, width, dtype=means.dtype)
    done = torch.zeros(height, width, dtype=torch.bool)
    rgb = torch.zeros(height, width, colors.shape[-1], dtype=means.dtype)
    dep = torch.zeros(height, width, dtype=means.dtype)
    for i in torch.argsort(z.detach()).tolist():
        if not near_plane <= float(z[i].detach()) or float(opacities[i].detach()) < 1 / 255:
            continue
        dx, dy = xs - mean2d[i, 0], ys - mean2d[i, 1]
        sigma = 0.5 * (conic[i, 0, 0] * dx * dx + conic[i, 1, 1] * dy * dy) \
            + conic[i, 0, 1] * dx * dy
        alpha = torch.clamp(opacities[i] * torch.exp(-sigma), max=0.999)
        valid = (sigma >= 0) & (alpha >= 1 / 255) & ~done
        next_T = T * (1 - alpha)
        stop = valid & (next_T <= 1e-4)
        use = valid & ~stop
        done = done | stop
        w = torch.where(use, alpha * T, torch.zeros_like(T))
        rgb = rgb + w[..., None] * colors[i]
        dep = dep + w * z[i]
        T = torch.where(use, next_T, T)
    alpha_img = 1 - T
    return rgb, (dep / alpha_img.clamp(min=1e-10))[..., None], alpha_img[..., None], done
