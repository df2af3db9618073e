"""Analytic renders of a textured slanted plane, the ground truth for warp and depth-loss tests.

The plane ``n . X = c`` lives in the target camera frame; a camera at ``T_tgt_to_cam`` sees it
along rays ``X_cam = depth * K^-1 (u, v, 1)``; the colour is a smooth function of the plane
point's target-frame (X, Y), so the image at any pose is known in closed form.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

PLANE_NORMAL = (-0.15, -0.1, 1.0)  # target frame; Z = 2 + 0.15 X + 0.1 Y
PLANE_OFFSET = 2.0


def pixel_intrinsics(height: int, width: int) -> Tensor:
    """(4, 4) float64 pixel K with a ~56 degree horizontal field of view."""
    f = 0.9 * width
    return torch.tensor([[f, 0.0, (width - 1) / 2, 0.0], [0.0, f, (height - 1) / 2, 0.0],
                         [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)


def texture(X: Tensor, Y: Tensor) -> Tensor:
    """(N,) plane coordinates -> (3, N) smooth colours in [0.05, 0.95]."""
    chans = []
    for k in range(3):
        chans.append(0.5 + 0.25 * torch.sin((4.0 + k) * X + 0.7 * k)
                     + 0.2 * torch.cos((3.0 + 1.5 * k) * Y - 0.4 * k))
    return torch.stack(chans)


def render_plane(K: Tensor, T_tgt_to_cam: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Image (3, H, W) and depth (1, H, W), float64, of the plane seen from ``T_tgt_to_cam``."""
    K = K.double()
    T = T_tgt_to_cam.double()
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing='ij')
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width,
                                                                dtype=torch.float64)])
    rays = torch.linalg.inv(K[:3, :3]) @ pix  # (3, N), z = 1
    R, t = T[:3, :3], T[:3, 3]
    n = torch.tensor(PLANE_NORMAL, dtype=torch.float64)
    # X_tgt = R^T (lam * ray - t); n . X_tgt = c
    nR = R @ n  # n . R^T x == (R n) . x
    lam = (PLANE_OFFSET + nR @ t) / (nR @ rays)
    X_tgt = R.T @ (lam * rays - t[:, None])
    image = texture(X_tgt[0], X_tgt[1]).reshape(3, height, width)
    return image, lam.reshape(1, height, width)


def rigid(axis_angle: tuple[float, float, float],
          translation: tuple[float, float, float]) -> Tensor:
    """(4, 4) float64 transform [R(axis_angle) | t] by Rodrigues' formula (independent of geo3d)."""
    w = torch.tensor(axis_angle, dtype=torch.float64)
    theta = float(w.norm())
    R = torch.eye(3, dtype=torch.float64)
    if theta > 0:
        k = w / theta
        Kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]],
                          dtype=torch.float64)
        R = R + math.sin(theta) * Kx + (1 - math.cos(theta)) * Kx @ Kx
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = R
    T[:3, 3] = torch.tensor(translation, dtype=torch.float64)
    return T
