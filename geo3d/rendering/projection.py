"""EWA projection of 3D Gaussians into pinhole cameras, packed (one row per visible pair).

The maths is 3D Gaussian Splatting's (Kerbl et al., SIGGRAPH 2023) as gsplat 1.5.3 computes it
(github.com/nerfstudio-project/gsplat, ``cuda/csrc/ProjectionEWA3DGSFused.cu``):

- ``Sigma = R S S^T R^T`` from an (unnormalised, wxyz) quaternion and linear scales;
- ``mu_c = W mu + t`` and ``Sigma_c = W Sigma W^T`` with the world->camera ``viewmat = [W | t]``;
- ``mu_2d = K mu_c / z`` and ``Sigma_2d = J Sigma_c J^T + eps2d I``, ``J`` the Jacobian of the
  perspective map at ``mu_c`` (its ``x/z``, ``y/z`` clamped to 1.3x the field of view, as gsplat);
- the conic is ``Sigma_2d^-1`` stored as ``(a, b, c)`` = entries ``[0,0], [0,1], [1,1]``;
- the pixel radius is ``ceil(extend * sqrt(diag(Sigma_2d)))`` with the opacity-aware
  ``extend = min(3.33, sqrt(2 log(255 opacity)))`` (Radl et al., StopThePop, arXiv 2402.00525
  §B.2): outside that box every pixel has ``alpha < 1/255`` and is skipped by the compositor.

A pair is culled (as gsplat) when ``z`` is outside ``[near_plane, far_plane]``, the blurred 2D
covariance is not positive definite, ``opacity < 1/255``, or the box misses the image.

The covariance, camera transform and perspective Jacobian are gsplat's own pure-PyTorch
functions (``gsplat.cuda._torch_impl``, private API of gsplat 1.5.3, which run on CPU); the
blur, conic, radius and culling follow the CUDA kernel above.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

try:
    from gsplat.cuda._torch_impl import (_persp_proj, _quat_scale_to_covar_preci,
                                         _spherical_harmonics, _world_to_cam)
except ImportError as err:  # pragma: no cover - gsplat is a pinned dependency
    raise ImportError('geo3d.rendering needs gsplat==1.5.3 (pip install "geo3d[gs]"); its pure '
                      f'PyTorch projection is used on every device: {err}') from err

__all__ = ['ALPHA_THRESHOLD', 'ProjectedGaussians', 'project_gaussians', 'camera_centers',
           'sh_colors']

ALPHA_THRESHOLD = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD: fainter contributions are skipped
MAX_EXTEND = 3.33  # gsplat's bounding-box extent in standard deviations


@dataclass
class ProjectedGaussians:
    """Visible (camera, Gaussian) pairs, packed; ``M`` rows, gsplat's ``packed=True`` layout.

    Attributes:
        camera_ids: (M,) int64 camera index of each pair.
        gaussian_ids: (M,) int64 Gaussian index of each pair.
        means2d: (M, 2) projected centre in pixels (pixel ``(i, j)`` has its centre at
            ``(j + 0.5, i + 0.5)``).
        depths: (M,) camera-frame ``z`` of the centre.
        conics: (M, 3) ``(a, b, c)`` of the inverse blurred 2D covariance ``[[a, b], [b, c]]``.
        radii: (M, 2) int32 half-width and half-height of the pixel box, both > 0.
        opacities: (M,) opacity of the pair's Gaussian.
    """

    camera_ids: Tensor
    gaussian_ids: Tensor
    means2d: Tensor
    depths: Tensor
    conics: Tensor
    radii: Tensor
    opacities: Tensor

    def __len__(self) -> int:
        return int(self.camera_ids.shape[0])

    def select(self, keep: Tensor) -> 'ProjectedGaussians':
        """The pairs where the (M,) bool ``keep`` is True."""
        return ProjectedGaussians(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def _candidate_pairs(means: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor,
                     Ks: Tensor, width: int, height: int, near_plane: float, far_plane: float,
                     eps2d: float) -> tuple[Tensor, Tensor]:
    """(gaussian_ids, camera_ids) of the pairs that may be visible: a cheap conservative cull.

    Drops pairs outside ``[near_plane, far_plane]``, too faint, or whose centre lies farther
    outside the image than a bound on their pixel radius: the blurred 2D covariance has largest
    eigenvalue at most ``||J||_F^2 max(scale)^2 + eps2d`` (``||J||_F`` the Frobenius norm of the
    perspective Jacobian, >= its clamped value), so the box half-size is at most
    ``3.33 sqrt(that) + 1``. Only pairs the exact test would cull are dropped; the point is to
    run the projection on far fewer pairs.
    """
    cam = torch.einsum('nj,cij->nci', means, viewmats[:, :3, :3]) + viewmats[:, :3, 3]
    x, y, z = cam.unbind(-1)
    ok = (z >= near_plane) & (z <= far_plane) & (opacities[:, None] >= ALPHA_THRESHOLD)
    zs = torch.where(ok, z, torch.ones_like(z))
    fx, fy, cx, cy = Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2]
    xz, yz = x / zs, y / zs
    jac_sq = (fx ** 2 * (1 + xz ** 2) + fy ** 2 * (1 + yz ** 2)) / zs ** 2
    s_max = scales.abs().amax(-1, keepdim=True)  # (N, 1)
    bound = MAX_EXTEND * torch.sqrt(jac_sq * s_max ** 2 + eps2d) + 1.0
    u, v = fx * xz + cx, fy * yz + cy
    ok &= (u + bound > 0) & (u - bound < width) & (v + bound > 0) & (v - bound < height)
    return ok.nonzero(as_tuple=True)


def project_gaussians(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                      viewmats: Tensor, Ks: Tensor, width: int, height: int,
                      near_plane: float = 0.01, far_plane: float = 1e10,
                      eps2d: float = 0.3) -> ProjectedGaussians:
    """Project ``N`` Gaussians into ``C`` pinhole cameras; only the visible pairs are kept.

    Args:
        means: (N, 3) world-frame centres.
        quats: (N, 4) rotations as ``(w, x, y, z)`` quaternions, need not be normalised.
        scales: (N, 3) standard deviations along the rotated axes (linear, not log).
        opacities: (N,) opacities in [0, 1].
        viewmats: (C, 4, 4) world->camera transforms (OpenCV axes: x right, y down, z forward).
        Ks: (C, 3, 3) pixel intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane: pairs with camera ``z`` outside this range are culled.
        eps2d: isotropic blur (pixels^2) added to every 2D covariance.

    Returns:
        :class:`ProjectedGaussians`, differentiable in means, quats, scales, opacities,
        viewmats and Ks (ids and radii are not).
    """
    with torch.no_grad():
        gid, cid = _candidate_pairs(means, scales, opacities, viewmats, Ks, width, height,
                                    near_plane, far_plane, eps2d)
    covars, _ = _quat_scale_to_covar_preci(quats[gid], scales[gid], True, False, triu=False)
    # gsplat's helpers take (..., C, N, ...) batches: here batch = pairs, C = N = 1
    means_c, covars_c = _world_to_cam(means[gid][:, None], covars[:, None], viewmats[cid][:, None])
    means2d, cov2d = _persp_proj(means_c, covars_c, Ks[cid][:, None], width, height)
    means_c, means2d, cov2d = means_c[:, 0, 0], means2d[:, 0, 0], cov2d[:, 0, 0]

    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    safe_det = det.clamp(min=1e-10)
    conics = torch.stack([cov2d[:, 1, 1] / safe_det,
                          -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / safe_det,
                          cov2d[:, 0, 0] / safe_det], -1)
    opac = opacities[gid]

    with torch.no_grad():
        extend = torch.sqrt(2.0 * torch.log(opac.clamp(min=ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp(max=MAX_EXTEND)
        diag = torch.stack([cov2d[:, 0, 0], cov2d[:, 1, 1]], -1).clamp(min=0)
        radii = torch.ceil(extend[:, None] * diag.sqrt())
        m = means2d.detach()
        keep = ((det > 0) & (radii > 0).any(-1)
                & (m[:, 0] + radii[:, 0] > 0) & (m[:, 0] - radii[:, 0] < width)
                & (m[:, 1] + radii[:, 1] > 0) & (m[:, 1] - radii[:, 1] < height))
    proj = ProjectedGaussians(cid, gid, means2d, means_c[:, 2], conics, radii.int(), opac)
    return proj.select(keep)


def camera_centers(viewmats: Tensor) -> Tensor:
    """(C, 3) world-frame camera centres ``-W^T t`` of (C, 4, 4) world->camera transforms."""
    return -torch.einsum('cji,cj->ci', viewmats[:, :3, :3], viewmats[:, :3, 3])


def sh_colors(sh_degree: int, coeffs: Tensor, means: Tensor, centers: Tensor) -> Tensor:
    """View-dependent colours from spherical-harmonics coefficients, as gsplat's rasterization.

    Args:
        sh_degree: degree used (``(sh_degree + 1)**2 <= K``).
        coeffs: (M, K, 3) coefficients of each pair's Gaussian.
        means: (M, 3) Gaussian centres; centers: (M, 3) camera centres of the pairs.

    Returns:
        (M, 3) colours ``max(SH(dir) + 0.5, 0)`` with ``dir = mean - center`` (gsplat's offset
        that matches the Inria renderer).
    """
    if (sh_degree + 1) ** 2 > coeffs.shape[-2]:
        raise ValueError(f'sh_degree={sh_degree} needs {(sh_degree + 1) ** 2} coefficients, '
                         f'colors has {coeffs.shape[-2]}')
    return torch.clamp_min(_spherical_harmonics(sh_degree, means - centers, coeffs) + 0.5, 0.0)
