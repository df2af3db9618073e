"""One differentiable Gaussian rasterizer for geo3d: gsplat's CUDA kernels or a PyTorch path.

:func:`rasterize` takes gsplat's conventions (gsplat 1.5.3, ``gsplat.rasterization``) and
renders colour, expected depth and alpha:

- ``viewmats`` (C, 4, 4) world->camera, OpenCV axes (x right, y down, z forward);
  ``Ks`` (C, 3, 3) pixel intrinsics; pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``;
- ``quats`` (N, 4) ``(w, x, y, z)``, normalised internally; ``scales`` (N, 3) linear standard
  deviations; ``opacities`` (N,) in [0, 1]; ``colors`` (N, D) / (C, N, D) values, or
  (N, K, 3) / (C, N, K, 3) spherical-harmonics coefficients with ``sh_degree``;
- EWA projection with ``eps2d`` blur, culling by ``near_plane`` / ``far_plane``, opacity-aware
  pixel boxes, front-to-back compositing with alpha clamp 0.999, skip below 1/255 and stop
  once the transmittance would reach 1e-4 (see :mod:`.projection` and :mod:`.torch_rasterizer`);
- ``depth`` is gsplat's ``'ED'`` expected depth ``sum_i w_i z_i / sum_i w_i`` (camera ``z``,
  not ray length; 0 where nothing was hit), ``alpha`` is ``sum_i w_i = 1 - T``;
- ``backgrounds`` (C, D) or (D,) are added to the colour as ``+ (1 - alpha) * background``.

Backends: ``'gsplat'`` calls ``gsplat.rasterization(..., render_mode='RGB+D')`` and applies
the 'ED' division and the background here, exactly as its 'RGB+ED' mode and ``backgrounds`` do
(CUDA only; its kernels are JIT-compiled on first use); ``'torch'`` runs
:mod:`.torch_rasterizer` on any device; ``'auto'`` picks gsplat for float32 CUDA tensors when
its extension loads and the torch path otherwise. ``RenderOutput.meta['backend']`` says which
one ran.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .projection import camera_centers, project_gaussians, sh_colors
from .torch_rasterizer import composite_tiles, intersect_tiles

__all__ = ['RenderOutput', 'rasterize', 'gsplat_cuda_available', 'BACKENDS',
           'DEFAULT_TILE_SIZE']

BACKENDS = ('auto', 'gsplat', 'torch')
# tile edge per backend when ``tile_size=None``: gsplat's default; for the PyTorch path 8 was
# fastest on CPU (bench/bench_rasterize.py: smaller tiles waste fewer pixel evaluations on
# small Gaussians, at the cost of more tile-Gaussian pairs)
DEFAULT_TILE_SIZE = {'gsplat': 16, 'torch': 8}


@dataclass
class RenderOutput:
    """What :func:`rasterize` returns.

    Attributes:
        rgb: (C, H, W, D) composited colours (D = 3 for RGB), background included.
        depth: (C, H, W, 1) expected camera-``z`` depth (gsplat's 'ED'); 0 where alpha is 0.
        alpha: (C, H, W, 1) accumulated opacity ``1 - T``.
        meta: ``backend`` ('gsplat' or 'torch'), and the visible (camera, Gaussian) pairs in
            gsplat's packed layout: ``camera_ids`` (M,), ``gaussian_ids`` (M,), ``radii``
            (M, 2) int32, ``means2d`` (M, 2), ``depths`` (M,), ``conics`` (M, 3),
            ``opacities`` (M,); plus ``tile_size`` and ``n_isects`` (tile intersections).
    """

    rgb: Tensor
    depth: Tensor
    alpha: Tensor
    meta: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _gsplat_cuda_status() -> str:
    """'' if gsplat's CUDA extension is usable here, else the reason (computed once)."""
    if not torch.cuda.is_available():
        return 'torch.cuda.is_available() is False'
    try:
        from gsplat.cuda._backend import _C  # JIT-compiles on first import (minutes)
    except Exception as err:  # noqa: BLE001 - any build/import failure means "not usable"
        return f'gsplat CUDA extension failed to load: {type(err).__name__}: {err}'
    if _C is None:
        return 'gsplat CUDA extension is not built (no CUDA toolkit found for its JIT build)'
    return ''


def gsplat_cuda_available() -> bool:
    """True when gsplat's CUDA rasterizer can run here (first call may build it)."""
    return _gsplat_cuda_status() == ''


def _check_tensor(name: str, t: Any, shape: tuple, shape_text: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor of shape {shape_text}, '
                        f'got {type(t).__name__}')
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        raise ValueError(f'{name} must have shape {shape_text}, got {tuple(t.shape)}')


def _validate(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
              viewmats: Tensor, Ks: Tensor, width: int, height: int, near_plane: float,
              far_plane: float, eps2d: float, backgrounds: Tensor | None,
              sh_degree: int | None, backend: str, tile_size: int) -> tuple[int, int, int]:
    """Check every argument; returns ``(N, C, D)``."""
    _check_tensor('means', means, (None, 3), '(N, 3)')
    n = means.shape[0]
    _check_tensor('quats', quats, (n, 4), f'(N, 4) with N={n}')
    _check_tensor('scales', scales, (n, 3), f'(N, 3) with N={n}')
    _check_tensor('opacities', opacities, (n,), f'(N,) with N={n}')
    _check_tensor('viewmats', viewmats, (None, 4, 4), '(C, 4, 4)')
    c = viewmats.shape[0]
    if c == 0:
        raise ValueError('viewmats must hold at least one camera, got shape (0, 4, 4)')
    _check_tensor('Ks', Ks, (c, 3, 3), f'(C, 3, 3) with C={c}')
    if not isinstance(colors, Tensor):
        raise TypeError(f'colors must be a torch.Tensor, got {type(colors).__name__}')
    if sh_degree is None:
        ok = (colors.ndim == 2 and colors.shape[0] == n) or (
            colors.ndim == 3 and tuple(colors.shape[:2]) == (c, n))
        if not ok or colors.shape[-1] == 0:
            raise ValueError(f'colors must have shape (N, D) or (C, N, D) with N={n}, C={c}, '
                             f'D>0, got {tuple(colors.shape)}')
        d = colors.shape[-1]
    else:
        if not isinstance(sh_degree, int) or sh_degree < 0:
            raise ValueError(f'sh_degree must be None or an int >= 0, got {sh_degree!r}')
        ok = (colors.ndim == 3 and colors.shape[0] == n) or (
            colors.ndim == 4 and tuple(colors.shape[:2]) == (c, n))
        if not ok or colors.shape[-1] != 3 or colors.shape[-2] < (sh_degree + 1) ** 2:
            raise ValueError(f'with sh_degree={sh_degree} colors must be SH coefficients of '
                             f'shape (N, K, 3) or (C, N, K, 3) with N={n}, C={c}, '
                             f'K>={(sh_degree + 1) ** 2}, got {tuple(colors.shape)}')
        d = 3
    named = dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                 viewmats=viewmats, Ks=Ks)
    if backgrounds is not None:
        if not isinstance(backgrounds, Tensor) or not (
                tuple(backgrounds.shape) == (d,) or tuple(backgrounds.shape) == (c, d)):
            got = tuple(backgrounds.shape) if isinstance(backgrounds, Tensor) else type(
                backgrounds).__name__
            raise ValueError(f'backgrounds must have shape (D,) or (C, D) with C={c}, D={d}, '
                             f'got {got}')
        named['backgrounds'] = backgrounds
    for name, t in named.items():
        if not t.is_floating_point():
            raise TypeError(f'{name} must be a floating-point tensor, got {t.dtype}')
        if t.dtype != means.dtype:
            raise TypeError(f'{name} has dtype {t.dtype} but means has {means.dtype}; '
                            'all inputs must share one dtype')
        if t.device != means.device:
            raise ValueError(f'{name} is on {t.device} but means is on {means.device}; '
                             'all inputs must be on one device')
    for name, v in (('width', width), ('height', height), ('tile_size', tile_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f'{name} must be a positive int, got {v!r}')
    if not 0 <= near_plane < far_plane:
        raise ValueError(f'need 0 <= near_plane < far_plane, got near_plane={near_plane}, '
                         f'far_plane={far_plane}')
    if eps2d < 0:
        raise ValueError(f'eps2d must be >= 0, got {eps2d}')
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    return n, c, d


def _select_backend(backend: str, means: Tensor) -> str:
    if backend == 'torch':
        return 'torch'
    usable = means.is_cuda and means.dtype == torch.float32
    if backend == 'gsplat':
        if not means.is_cuda:
            raise RuntimeError(f"backend='gsplat' needs CUDA tensors (gsplat's rasterizer has no "
                               f"CPU kernels), got tensors on {means.device}; use "
                               f"backend='torch' or 'auto'")
        if means.dtype != torch.float32:
            raise RuntimeError(f"backend='gsplat' needs float32 tensors, got {means.dtype}; use "
                               f"backend='torch' for other dtypes")
        status = _gsplat_cuda_status()
        if status:
            raise RuntimeError(f"backend='gsplat' is not usable: {status}")
        return 'gsplat'
    if usable:
        status = _gsplat_cuda_status()
        if not status:
            return 'gsplat'
        warnings.warn(f'rasterize: falling back to the PyTorch path on CUDA ({status})',
                      RuntimeWarning, stacklevel=3)
    return 'torch'


def _rasterize_torch(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                     colors: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int,
                     near_plane: float, far_plane: float, eps2d: float,
                     sh_degree: int | None, tile_size: int,
                     chunk: int) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The PyTorch path: project, bin into tiles, composite.

    Returns ``(acc, T, meta)``: (C, H, W, D + 1) accumulated colours and depth (gsplat's
    'RGB+D'), (C, H, W, 1) final transmittance, and the meta entries.
    """
    c = viewmats.shape[0]
    proj = project_gaussians(means, quats, scales, opacities, viewmats, Ks, width, height,
                             near_plane, far_plane, eps2d)
    per_camera = colors.ndim == (3 if sh_degree is None else 4)
    pair_colors = (colors[proj.camera_ids, proj.gaussian_ids] if per_camera
                   else colors[proj.gaussian_ids])
    if sh_degree is not None:
        centers = camera_centers(viewmats)[proj.camera_ids]
        pair_colors = sh_colors(sh_degree, pair_colors, means[proj.gaussian_ids], centers)
    features = torch.cat([pair_colors, proj.depths[:, None]], -1)  # gsplat's 'RGB+D' channels
    bins = intersect_tiles(proj.means2d, proj.radii, proj.depths, proj.camera_ids, c, width,
                           height, tile_size)
    acc, trans = composite_tiles(bins, proj.means2d, proj.conics, proj.opacities, features,
                                 width, height, chunk=chunk)
    meta = dict(camera_ids=proj.camera_ids, gaussian_ids=proj.gaussian_ids, radii=proj.radii,
                means2d=proj.means2d, depths=proj.depths, conics=proj.conics,
                opacities=proj.opacities, n_isects=bins.num_intersections)
    return acc, trans[..., None], meta


def _rasterize_gsplat(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                      colors: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int,
                      near_plane: float, far_plane: float, eps2d: float,
                      sh_degree: int | None, tile_size: int,
                      packed: bool) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """gsplat's CUDA rasterizer in 'RGB+D' mode.

    The 'ED' division by alpha and the background are applied by :func:`rasterize` for both
    backends alike (exactly what gsplat's 'RGB+ED' and ``backgrounds`` compute).
    Returns ``(acc, alpha, meta)`` with (C, H, W, D + 1) and (C, H, W, 1) images.
    """
    from gsplat import rasterization

    render, alpha, gmeta = rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree,
        packed=packed, tile_size=tile_size, render_mode='RGB+D')
    if packed:
        cam, gid = gmeta['camera_ids'], gmeta['gaussian_ids']
        sel = dict(radii=gmeta['radii'], means2d=gmeta['means2d'], depths=gmeta['depths'],
                   conics=gmeta['conics'], opacities=gmeta['opacities'])
    else:  # dense (C, N, ...) -> the packed layout of the visible pairs
        cam, gid = (gmeta['radii'] > 0).all(-1).nonzero(as_tuple=True)
        sel = {k: gmeta[k][cam, gid] for k in ('radii', 'means2d', 'depths', 'conics',
                                               'opacities')}
    meta = dict(camera_ids=cam.long(), gaussian_ids=gid.long(), **sel,
                n_isects=int(gmeta['flatten_ids'].shape[0]))
    return render, alpha, meta


def rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
              viewmats: Tensor, Ks: Tensor, width: int, height: int, near_plane: float = 0.01,
              far_plane: float = 1e10, eps2d: float = 0.3, backgrounds: Tensor | None = None,
              backend: str = 'auto', sh_degree: int | None = None,
              tile_size: int | None = None, packed: bool = True,
              chunk: int = 16) -> RenderOutput:
    """Render ``N`` 3D Gaussians into ``C`` pinhole cameras (differentiable).

    Args:
        means: (N, 3) world-frame centres.
        quats: (N, 4) ``(w, x, y, z)`` rotations (normalised internally).
        scales: (N, 3) linear standard deviations.
        opacities: (N,) in [0, 1].
        colors: (N, D) or per-camera (C, N, D) values; with ``sh_degree`` (N, K, 3) or
            (C, N, K, 3) SH coefficients (colour = ``max(SH(dir) + 0.5, 0)``, as gsplat).
        viewmats: (C, 4, 4) world->camera; Ks: (C, 3, 3) pixel intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane: camera-``z`` range of the Gaussian centres that are drawn.
        eps2d: blur (pixels^2) added to every projected covariance.
        backgrounds: (D,) or (C, D) colour behind the Gaussians; None = 0.
        backend: 'auto' (gsplat on float32 CUDA tensors, else torch), 'gsplat' or 'torch'.
        sh_degree: None for plain colours, else the SH degree to evaluate.
        tile_size: tile edge in pixels; None = 16 for gsplat, 8 for the torch path.
        packed: gsplat's packed projection (gsplat backend only; the torch path always packs).
        chunk: Gaussians per tile and step of the torch path (speed/memory only).

    Returns:
        :class:`RenderOutput` with ``rgb`` (C, H, W, D), ``depth`` (C, H, W, 1),
        ``alpha`` (C, H, W, 1) and ``meta``. Gradients flow to means, quats, scales,
        opacities, colors (and viewmats, Ks).
    """
    _, c, d = _validate(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                        near_plane, far_plane, eps2d, backgrounds, sh_degree, backend,
                        1 if tile_size is None else tile_size)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        raise ValueError(f'chunk must be a positive int, got {chunk!r}')
    which = _select_backend(backend, means)
    if tile_size is None:
        tile_size = DEFAULT_TILE_SIZE[which]
    if which == 'gsplat':
        acc, alpha, meta = _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats,
                                             Ks, width, height, near_plane, far_plane, eps2d,
                                             sh_degree, tile_size, packed)
        trans = 1.0 - alpha
    else:
        acc, trans, meta = _rasterize_torch(means, quats, scales, opacities, colors, viewmats,
                                            Ks, width, height, near_plane, far_plane, eps2d,
                                            sh_degree, tile_size, chunk)
        alpha = 1.0 - trans
    rgb = acc[..., :d]
    if backgrounds is not None:
        rgb = rgb + trans * backgrounds.expand(c, d)[:, None, None, :]
    depth = acc[..., d:] / alpha.clamp(min=1e-10)  # gsplat's 'ED' normalisation
    meta.update(backend=which, tile_size=tile_size)
    return RenderOutput(rgb=rgb, depth=depth, alpha=alpha, meta=meta)
