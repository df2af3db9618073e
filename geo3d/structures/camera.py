"""Pinhole camera geometry for self-supervised depth: intrinsics, (back)projection, poses, warps.

Conventions (those of Monodepth2, Godard et al., ICCV 2019, github.com/nianticlabs/monodepth2):

- Intrinsics are 4x4 matrices ``[[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]]``.
  Datasets store them *normalised* (row 0 divided by the image width, row 1 by the height);
  :func:`scale_intrinsics` turns them into pixel units for a given input size and pyramid level.
- Pixel ``(u, v)`` with integer ``u`` in ``[0, W-1]`` is the *centre* of column ``u``.
- A relative pose ``T_tgt_to_src`` (B, 4, 4) maps homogeneous points of the target camera frame
  into the source camera frame: ``X_src = T_tgt_to_src @ X_tgt``.
- ``grid_sample`` coordinates: :func:`project` normalises pixel coordinates so that pixel centres
  land exactly where ``F.grid_sample(..., align_corners=align_corners)`` reads them:
  ``align_corners=True`` -> ``2u/(W-1) - 1`` (Monodepth2's normalisation; ManyDepth/ProDepth pass
  ``align_corners=True`` to match it), ``align_corners=False`` -> ``(2u+1)/W - 1``. Monodepth2
  itself normalises with ``W-1`` but samples with the ``False`` default of PyTorch >= 1.3, a
  sub-pixel shift; here the two always agree, so identity warps are exact in both modes.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import (axis_angle_to_rotation_matrix,
                                         rotation_matrix_to_axis_angle)
from torch import Tensor

__all__ = ['scale_intrinsics', 'intrinsics_pyramid', 'pixel_grid', 'backproject', 'project',
           'axis_angle_to_matrix', 'matrix_to_axis_angle', 'pose_vec_to_matrix',
           'matrix_to_pose_vec', 'disp_to_depth', 'depth_to_disp', 'warp']

PROJECT_EPS = 1e-7  # Monodepth2's guard against division by a zero depth


def _check(name: str, t: Tensor, shape: Sequence[int | None]) -> None:
    """Raise ValueError unless ``t`` is a tensor of ``len(shape)`` dims matching ``shape``."""
    want = '(' + ', '.join('*' if s is None else str(s) for s in shape) + ')'
    if not isinstance(t, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor of shape {want}, got {type(t).__name__}')
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        raise ValueError(f'{name} must have shape {want}, got {tuple(t.shape)}')


def _check_batch(**tensors: Tensor) -> int:
    """All tensors share the leading batch size; returns it."""
    sizes = {name: t.shape[0] for name, t in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f'batch sizes differ: {sizes}')
    return next(iter(sizes.values()))


def scale_intrinsics(K_norm: Tensor, height: int, width: int, scale: int = 0) -> Tensor:
    """Pixel intrinsics of pyramid level ``scale`` from normalised intrinsics.

    As Monodepth2's loader: row 0 times ``width // 2**scale``, row 1 times ``height // 2**scale``.

    Args:
        K_norm: (..., 3, 3) or (..., 4, 4) normalised intrinsics (fx/W, fy/H, cx/W, cy/H).
        height, width: full input resolution (level 0) in pixels.
        scale: pyramid level; level ``s`` has size ``(height // 2**s, width // 2**s)``.

    Returns:
        (..., 4, 4) pixel intrinsics (a 3x3 input is embedded into a 4x4 identity).
    """
    if not isinstance(K_norm, Tensor) or K_norm.ndim < 2 or tuple(K_norm.shape[-2:]) not in (
            (3, 3), (4, 4)):
        shape = tuple(K_norm.shape) if isinstance(K_norm, Tensor) else type(K_norm).__name__
        raise ValueError(f'K_norm must have shape (..., 3, 3) or (..., 4, 4), got {shape}')
    if height <= 0 or width <= 0 or scale < 0:
        raise ValueError(f'height, width must be > 0 and scale >= 0, got height={height}, '
                         f'width={width}, scale={scale}')
    h, w = height // 2 ** scale, width // 2 ** scale
    if h == 0 or w == 0:
        raise ValueError(f'scale {scale} is too deep for a {height}x{width} input')
    K = torch.eye(4, dtype=K_norm.dtype, device=K_norm.device).expand(
        *K_norm.shape[:-2], 4, 4).clone()
    K[..., :3, :3] = K_norm[..., :3, :3]
    K[..., 0, :] = K[..., 0, :] * w
    K[..., 1, :] = K[..., 1, :] * h
    return K


def intrinsics_pyramid(K_norm: Tensor, height: int, width: int,
                       scales: Sequence[int] = (0, 1, 2, 3)) -> dict[tuple[str, int], Tensor]:
    """``{('K', s): (..., 4, 4), ('inv_K', s): (..., 4, 4)}`` for every scale, Monodepth2's keys."""
    out: dict[tuple[str, int], Tensor] = {}
    for s in scales:
        K = scale_intrinsics(K_norm, height, width, s)
        out[('K', s)] = K
        out[('inv_K', s)] = torch.linalg.inv(K)
    return out


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Tensor:
    """(3, H*W) homogeneous pixel centres ``(u, v, 1)``, row-major (``u`` fastest)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing='ij')
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def backproject(depth: Tensor, inv_K: Tensor) -> Tensor:
    """Lift every pixel to a homogeneous 3D point of its camera frame.

    Args:
        depth: (B, 1, H, W) depth along the optical axis (z).
        inv_K: (B, 4, 4) inverse pixel intrinsics at this resolution.

    Returns:
        (B, 4, H*W) points ``[depth * K^-1 (u, v, 1), 1]``, pixels in row-major order.
    """
    _check('depth', depth, (None, 1, None, None))
    _check('inv_K', inv_K, (None, 4, 4))
    b = _check_batch(depth=depth, inv_K=inv_K)
    h, w = depth.shape[-2:]
    rays = inv_K[:, :3, :3] @ pixel_grid(h, w, depth.dtype, depth.device)  # (B, 3, HW)
    points = rays * depth.reshape(b, 1, h * w)
    return torch.cat([points, torch.ones_like(points[:, :1])], 1)


def _project_pixels(points: Tensor, K: Tensor, T: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 4, N) points -> ((B, 2, N) pixel coordinates, (B, 1, N) depth in the new frame)."""
    cam = (K @ T)[:, :3, :] @ points  # (B, 3, N)
    z = cam[:, 2:3]
    return cam[:, :2] / (z + PROJECT_EPS), z


def _normalise(pix: Tensor, height: int, width: int, align_corners: bool) -> Tensor:
    """(B, 2, N) pixel coordinates -> (B, N, 2) grid_sample coordinates (see module doc)."""
    size = pix.new_tensor([width, height]).view(1, 2, 1)
    if align_corners:
        grid = 2.0 * pix / (size - 1).clamp(min=1) - 1.0
    else:
        grid = (2.0 * pix + 1.0) / size - 1.0
    return grid.transpose(1, 2)


def project(points: Tensor, K: Tensor, T: Tensor, height: int, width: int,
            align_corners: bool = True) -> Tensor:
    """Project homogeneous points into another camera as a ``F.grid_sample`` grid.

    Args:
        points: (B, 4, N) homogeneous points in the target frame, ``N == height * width``
            (row-major pixels of the target image, as returned by :func:`backproject`).
        K: (B, 4, 4) pixel intrinsics of the source camera (image of size ``height x width``).
        T: (B, 4, 4) target-to-source transform.
        height, width: size of the source image that will be sampled.
        align_corners: the ``align_corners`` that the grid will be sampled with.

    Returns:
        (B, H, W, 2) grid of ``(x, y)`` in [-1, 1] for pixels inside the source image.
    """
    _check('points', points, (None, 4, None))
    _check('K', K, (None, 4, 4))
    _check('T', T, (None, 4, 4))
    b = _check_batch(points=points, K=K, T=T)
    if points.shape[2] != height * width:
        raise ValueError(f'points has {points.shape[2]} columns but height * width = '
                         f'{height} * {width} = {height * width}')
    pix, _ = _project_pixels(points, K, T)
    return _normalise(pix, height, width, align_corners).reshape(b, height, width, 2)


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula: (..., 3) axis * angle (radians) -> (..., 3, 3) rotation matrix.

    The same matrix as Monodepth2's ``rot_from_axisangle`` (which adds 1e-7 to the angle);
    computed by kornia's ``axis_angle_to_rotation_matrix``, exact and differentiable at 0.
    """
    if not isinstance(axis_angle, Tensor) or axis_angle.ndim < 1 or axis_angle.shape[-1] != 3:
        shape = tuple(axis_angle.shape) if isinstance(axis_angle, Tensor) else axis_angle
        raise ValueError(f'axis_angle must have shape (..., 3), got {shape}')
    return axis_angle_to_rotation_matrix(axis_angle)


def matrix_to_axis_angle(rotation: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrix -> (..., 3) axis * angle, angle in [0, pi] (kornia)."""
    if not isinstance(rotation, Tensor) or rotation.ndim < 2 or rotation.shape[-2:] != (3, 3):
        shape = tuple(rotation.shape) if isinstance(rotation, Tensor) else rotation
        raise ValueError(f'rotation must have shape (..., 3, 3), got {shape}')
    return rotation_matrix_to_axis_angle(rotation)


def _pose_vec(name: str, v: Tensor) -> Tensor:
    """(B, 1, 3) or (B, 3) -> (B, 3)."""
    if not isinstance(v, Tensor) or not (
            (v.ndim == 3 and v.shape[1:] == (1, 3)) or (v.ndim == 2 and v.shape[1] == 3)):
        shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(f'{name} must have shape (B, 1, 3) or (B, 3), got {shape}')
    return v.reshape(v.shape[0], 3)


def pose_vec_to_matrix(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """A pose network's 6-DoF output as a 4x4 transform.

    As Monodepth2's ``transformation_from_parameters``: ``invert=False`` gives ``M = [R | t]``
    (rotate, then translate); ``invert=True`` gives its exact inverse ``[R^T | -R^T t]``.
    Monodepth2 feeds the pose net ``[I_f, I_0]`` in temporal order and inverts for ``f < 0``, so
    that the result is always target (0) -> source (f).

    Args:
        axisangle: (B, 1, 3) or (B, 3) rotation vector (radians).
        translation: (B, 1, 3) or (B, 3).
        invert: return the inverse transform.

    Returns:
        (B, 4, 4).
    """
    a = _pose_vec('axisangle', axisangle)
    t = _pose_vec('translation', translation)
    b = _check_batch(axisangle=a, translation=t)
    R = axis_angle_to_matrix(a)
    if invert:
        R = R.transpose(1, 2)
        t = -(R @ t.unsqueeze(-1)).squeeze(-1)
    top = torch.cat([R, t.unsqueeze(-1)], 2)  # (B, 3, 4)
    bottom = top.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(b, 1, 4)
    return torch.cat([top, bottom], 1)


def matrix_to_pose_vec(T: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 4, 4) rigid transform -> (axisangle (B, 1, 3), translation (B, 1, 3)).

    Inverse of :func:`pose_vec_to_matrix` with ``invert=False`` (rotation angle in [0, pi]).
    """
    _check('T', T, (None, 4, 4))
    return matrix_to_axis_angle(T[:, :3, :3]).unsqueeze(1), T[:, :3, 3].unsqueeze(1)


def _check_depth_range(min_depth: float, max_depth: float) -> None:
    if not 0 < min_depth < max_depth:
        raise ValueError(f'need 0 < min_depth < max_depth, got min_depth={min_depth}, '
                         f'max_depth={max_depth}')


def disp_to_depth(disp: Tensor, min_depth: float, max_depth: float) -> tuple[Tensor, Tensor]:
    """Sigmoid disparity in [0, 1] -> (scaled disparity, depth), Monodepth2's ``disp_to_depth``.

    ``scaled = 1/max_depth + (1/min_depth - 1/max_depth) * disp``, ``depth = 1 / scaled``; so
    ``disp = 0`` is ``max_depth`` and ``disp = 1`` is ``min_depth``. Any shape.
    """
    _check_depth_range(min_depth, max_depth)
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


def depth_to_disp(depth: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """Inverse of :func:`disp_to_depth`: depth -> sigmoid-space disparity. Any shape."""
    _check_depth_range(min_depth, max_depth)
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def warp(src: Tensor, depth: Tensor, T_tgt_to_src: Tensor, K: Tensor, inv_K: Tensor,
         align_corners: bool = True, padding_mode: str = 'border') -> tuple[Tensor, Tensor]:
    """Inverse-warp a source image into the target view using target depth and relative pose.

    Every target pixel is back-projected with its depth, moved into the source frame with
    ``T_tgt_to_src``, projected with ``K`` and the source is sampled there bilinearly
    (Monodepth2's ``BackprojectDepth`` + ``Project3D`` + ``grid_sample``). Source and target
    share the intrinsics and size.

    Args:
        src: (B, C, H, W) source image.
        depth: (B, 1, H, W) target depth.
        T_tgt_to_src: (B, 4, 4) target -> source transform.
        K, inv_K: (B, 4, 4) pixel intrinsics at (H, W) and their inverse.
        align_corners, padding_mode: passed to ``F.grid_sample`` (Monodepth2: border padding).

    Returns:
        warped (B, C, H, W) and valid (B, 1, H, W) bool: the point is in front of the source
        camera and projects inside ``[0, W-1] x [0, H-1]`` (no padding was needed).
    """
    _check('src', src, (None, None, None, None))
    _check('depth', depth, (None, 1, None, None))
    _check('T_tgt_to_src', T_tgt_to_src, (None, 4, 4))
    _check('K', K, (None, 4, 4))
    _check('inv_K', inv_K, (None, 4, 4))
    _check_batch(src=src, depth=depth, T_tgt_to_src=T_tgt_to_src, K=K, inv_K=inv_K)
    if src.shape[-2:] != depth.shape[-2:]:
        raise ValueError(f'src {tuple(src.shape)} and depth {tuple(depth.shape)} must have the '
                         f'same height and width')
    b, _, h, w = src.shape
    points = backproject(depth, inv_K)
    pix, z = _project_pixels(points, K, T_tgt_to_src)
    grid = _normalise(pix, h, w, align_corners).reshape(b, h, w, 2)
    warped = F.grid_sample(src, grid.to(src.dtype), mode='bilinear', padding_mode=padding_mode,
                           align_corners=align_corners)
    u, v = pix[:, 0], pix[:, 1]
    valid = (z[:, 0] > PROJECT_EPS) & (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    return warped, valid.reshape(b, 1, h, w)
