"""Cross-modal alignment of Gaussian2Scene stage 1: voxel <-> pixel correspondences and losses.

Gaussian2Scene (Liu et al., arXiv 2506.08777) lets its 2D and 3D branches "interact" but
publishes no code; PiMAE (Chen et al., CVPR 2023) aligns the two modalities through the
projection of the point tokens into the image. Here the correspondences are geometric: a voxel
``X`` (world = raw scan frame) of scene ``b`` is projected into every frame ``f`` of that scene
with ``x = K_f [R | t] X``, ``[R | t] = camera_to_world_f^-1`` (OpenCV camera: x right, y down,
z forward; pixel centres at integers), and matched to the pixel ``(round(u), round(v))`` when

* it lies in front of the camera (``z > min_depth``) and inside the image, and
* it is not occluded: the frame's measured depth at that pixel (projected with the depth
  camera's intrinsics) is valid and ``|z - depth| < depth_tol``.

The pixel's feature is read from the image encoder's patch tokens (:func:`gather_patch_features`,
nearest patch or bilinear between patch centres), both sides are projected to a shared space
and aligned by a symmetric InfoNCE over all correspondences of the batch (temperature 0.07 as
CLIP / PiMAE-style contrastive alignment) or a cosine loss. Several voxels fall into one patch
and one voxel may be seen in several frames, so the InfoNCE is the multi-positive form
(MIL-NCE, Miech et al., CVPR 2020): every unique voxel is a row, every unique pixel feature a
column, and all correspondences of a row (column) are its positives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.models.ssl2d.necks import ProjectionMLP

__all__ = ['PointPixelMatches', 'project_to_frames', 'gather_patch_features',
           'multi_positive_info_nce', 'cosine_alignment', 'unique_pairs', 'AlignLoss',
           'PointPixelAlignment']

AlignLoss = Literal['info_nce', 'cosine']


@dataclass
class PointPixelMatches:
    """Correspondences between points and frame pixels (K of them).

    Attributes:
        point: (K,) int64 row of the point in the batch.
        frame: (K,) int64 flat frame index ``b * F + f``.
        uv: (K, 2) float pixel coordinates ``(u, v)`` in the colour image.
        z: (K,) float depth of the point in the camera.
    """

    point: Tensor
    frame: Tensor
    uv: Tensor
    z: Tensor

    @property
    def num_matches(self) -> int:
        return int(self.point.shape[0])

    def select(self, index: Tensor) -> 'PointPixelMatches':
        return PointPixelMatches(self.point[index], self.frame[index], self.uv[index],
                                 self.z[index])

    def pixel_index(self, width: int) -> Tensor:
        """(K,) int64 ``v_px * W + u_px`` of the nearest pixel."""
        px = torch.floor(self.uv + 0.5).long()
        return px[:, 1] * width + px[:, 0]


def _check_shape(name: str, t: Tensor, shape: Sequence[int | None]) -> None:
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = '(' + ', '.join('*' if s is None else str(s) for s in shape) + ')'
        raise ValueError(f'{name} must have shape {want}, got {tuple(t.shape)}')


def _pixels(cam: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """(M, 3) camera points, (M, 3, 3) intrinsics -> (M,) u, (M,) v (z guarded by the caller)."""
    z = cam[:, 2].clamp(min=1e-12)
    u = K[:, 0, 0] * cam[:, 0] / z + K[:, 0, 1] * cam[:, 1] / z + K[:, 0, 2]
    v = K[:, 1, 1] * cam[:, 1] / z + K[:, 1, 2]
    return u, v


def project_to_frames(coord: Tensor, batch: Tensor, camera_to_world: Tensor, intrinsics: Tensor,
                      image_size: Sequence[int], depth: Tensor | None = None,
                      depth_intrinsics: Tensor | None = None, depth_tol: float = 0.05,
                      min_depth: float = 1e-3, candidates: Tensor | None = None
                      ) -> PointPixelMatches:
    """Every (point, frame of its scene) pair where the point is seen, unoccluded.

    Args:
        coord: (N, 3) world coordinates (the frames' world frame); batch: (N,) scene index.
        camera_to_world: (B, F, 4, 4); intrinsics: (B, F, 3, 3) pixel intrinsics of the
            colour image of size ``image_size = (H, W)``.
        depth: (B, F, 1, H, W) metres (0 = no measurement) or None (no occlusion test).
        depth_intrinsics: (B, F, 3, 3) of ``depth`` (default ``intrinsics``).
        depth_tol: metres; a point is visible iff ``|z - depth(pixel)| < depth_tol``.
        min_depth: points with ``z <= min_depth`` are behind the camera.
        candidates: (N,) bool, only these points are projected (default all).

    Returns:
        :class:`PointPixelMatches`, frames in order, points in row order within a frame.
    """
    h, w = int(image_size[0]), int(image_size[1])
    _check_shape('coord', coord, (None, 3))
    _check_shape('camera_to_world', camera_to_world, (None, None, 4, 4))
    nb, nf = camera_to_world.shape[:2]
    _check_shape('intrinsics', intrinsics, (nb, nf, 3, 3))
    if batch.shape != coord.shape[:1]:
        raise ValueError(f'batch must be ({coord.shape[0]},), got {tuple(batch.shape)}')
    if coord.shape[0] and int(batch.max()) >= nb:
        raise ValueError(f'batch has scene index {int(batch.max())} but camera_to_world has '
                         f'{nb} scenes')
    if depth is not None:
        _check_shape('depth', depth, (nb, nf, 1, h, w))
        if depth_intrinsics is None:
            depth_intrinsics = intrinsics
        _check_shape('depth_intrinsics', depth_intrinsics, (nb, nf, 3, 3))
    if depth_tol <= 0:
        raise ValueError(f'depth_tol must be > 0, got {depth_tol}')
    rows = torch.arange(coord.shape[0], device=coord.device)
    if candidates is not None:
        if candidates.shape != coord.shape[:1] or candidates.dtype != torch.bool:
            raise ValueError(f'candidates must be a ({coord.shape[0]},) bool tensor')
        rows = rows[candidates]
    pts, b = coord[rows], batch[rows].long()
    world_to_camera = torch.linalg.inv(camera_to_world.double()).to(coord.dtype)
    out_point, out_frame, out_uv, out_z = [], [], [], []
    for f in range(nf):
        T = world_to_camera[b, f]  # (M, 4, 4)
        cam = torch.einsum('mij,mj->mi', T[:, :3, :3], pts) + T[:, :3, 3]
        z = cam[:, 2]
        u, v = _pixels(cam, intrinsics[b, f])
        px, py = torch.floor(u + 0.5), torch.floor(v + 0.5)
        ok = (z > min_depth) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
        if depth is not None:
            ud, vd = _pixels(cam, depth_intrinsics[b, f])
            qx, qy = torch.floor(ud + 0.5), torch.floor(vd + 0.5)
            ok &= (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
            qx = qx.long().clamp(0, w - 1)
            qy = qy.long().clamp(0, h - 1)
            d = depth[b, f, 0, qy, qx]
            ok &= (d > 0) & ((z - d).abs() < depth_tol)
        sel = torch.nonzero(ok).squeeze(1)
        out_point.append(rows[sel])
        out_frame.append(b[sel] * nf + f)
        out_uv.append(torch.stack([u[sel], v[sel]], 1))
        out_z.append(z[sel])
    return PointPixelMatches(torch.cat(out_point), torch.cat(out_frame), torch.cat(out_uv),
                             torch.cat(out_z))


def gather_patch_features(tokens: Tensor, matches: PointPixelMatches, patch: int,
                          grid_size: Sequence[int],
                          mode: Literal['nearest', 'bilinear'] = 'nearest',
                          visible: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Image features at the matched pixels from per-patch tokens.

    Patch ``(i, j)`` (token ``i * W_p + j``) covers pixels ``[j p, (j+1) p) x [i p, (i+1) p)``;
    its centre is pixel ``((j + 0.5) p - 0.5, (i + 0.5) p - 0.5)``.

    Args:
        tokens: (N_frames, L, D) patch features (``L = H_p W_p``).
        matches: correspondences (``frame`` indexes ``tokens``).
        patch: patch edge in pixels; grid_size: (H_p, W_p).
        mode: ``'nearest'`` (the token of the patch holding the pixel) or ``'bilinear'``
            (between the four nearest patch centres, clamped at the border).
        visible: (N_frames, L) bool, patches whose token is valid (``'nearest'`` only):
            matches in other patches are dropped.

    Returns:
        features (K', D), pixel ids (K',) (equal ids = the same feature: the patch for
        ``'nearest'``, the pixel for ``'bilinear'``) and (K',) int64 indices of the kept matches.
    """
    hp, wp = int(grid_size[0]), int(grid_size[1])
    n, length, _ = tokens.shape
    if length != hp * wp:
        raise ValueError(f'tokens have {length} patches, grid_size {hp}x{wp} gives {hp * wp}')
    keep = torch.arange(matches.num_matches, device=tokens.device)
    if mode == 'nearest':
        px = torch.floor(matches.uv + 0.5).long()
        j = torch.div(px[:, 0], patch, rounding_mode='floor').clamp(0, wp - 1)
        i = torch.div(px[:, 1], patch, rounding_mode='floor').clamp(0, hp - 1)
        tok = i * wp + j
        if visible is not None:
            if visible.shape != (n, length):
                raise ValueError(f'visible must be ({n}, {length}), got {tuple(visible.shape)}')
            keep = torch.nonzero(visible[matches.frame, tok]).squeeze(1)
            tok = tok[keep]
        frame = matches.frame[keep]
        return tokens[frame, tok], frame * length + tok, keep
    if mode != 'bilinear':
        raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
    if visible is not None:
        raise ValueError("bilinear sampling needs every patch's token (visible must be None)")
    s = ((matches.uv[:, 0] + 0.5) / patch - 0.5).clamp(0, wp - 1)
    t = ((matches.uv[:, 1] + 0.5) / patch - 0.5).clamp(0, hp - 1)
    j0 = torch.floor(s).long().clamp(max=max(wp - 2, 0))
    i0 = torch.floor(t).long().clamp(max=max(hp - 2, 0))
    j1, i1 = (j0 + 1).clamp(max=wp - 1), (i0 + 1).clamp(max=hp - 1)
    a, c = (s - j0).unsqueeze(1), (t - i0).unsqueeze(1)
    fr = matches.frame
    feat = ((1 - a) * (1 - c) * tokens[fr, i0 * wp + j0] + a * (1 - c) * tokens[fr, i0 * wp + j1]
            + (1 - a) * c * tokens[fr, i1 * wp + j0] + a * c * tokens[fr, i1 * wp + j1])
    h, w = hp * patch, wp * patch
    return feat, fr * (h * w) + matches.pixel_index(w), keep


def unique_pairs(a_id: Tensor, b_id: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Deduplicate both sides of K pairs.

    Returns:
        ``a_first`` (R,) / ``b_first`` (C,): index of the first pair holding each unique id,
        ``rows`` / ``cols`` (K,): the unique index of every pair's two sides.
    """
    def first(ids: Tensor) -> tuple[Tensor, Tensor]:
        uniq, inv = torch.unique(ids, return_inverse=True)
        pos = torch.full((uniq.shape[0],), ids.shape[0], dtype=torch.long, device=ids.device)
        pos = pos.scatter_reduce(0, inv, torch.arange(ids.shape[0], device=ids.device), 'amin')
        return pos, inv
    a_first, rows = first(a_id)
    b_first, cols = first(b_id)
    return a_first, b_first, rows, cols


def multi_positive_info_nce(a: Tensor, b: Tensor, rows: Tensor, cols: Tensor,
                            temperature: float = 0.07) -> Tensor:
    """Symmetric multi-positive InfoNCE (MIL-NCE) between two sets of embeddings.

    With ``s_rc = cos(a_r, b_c) / T`` and ``P`` the positive pairs ``(rows[k], cols[k])``::

        L = 1/2 [ mean_r -log(sum_{c in P(r)} e^{s_rc} / sum_c e^{s_rc})
                + mean_c -log(sum_{r in P(c)} e^{s_rc} / sum_r e^{s_rc}) ]

    over the rows / columns that have a positive. With one positive per row and column this is
    CLIP's symmetric cross-entropy.

    Args:
        a: (R, D); b: (C, D); rows, cols: (K,) int64 positive pairs; temperature: T > 0.
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f'a (R, D) and b (C, D) must share D, got {tuple(a.shape)}, '
                         f'{tuple(b.shape)}')
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError(f'rows and cols must be (K,), got {tuple(rows.shape)}, '
                         f'{tuple(cols.shape)}')
    if rows.numel() == 0:
        return (a.sum() + b.sum()) * 0.0
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    pos = torch.zeros_like(logits, dtype=torch.bool)
    pos[rows, cols] = True
    neg_inf = torch.finfo(logits.dtype).min
    masked = logits.masked_fill(~pos, neg_inf)
    has_r, has_c = pos.any(1), pos.any(0)
    row_loss = (logits.logsumexp(1) - masked.logsumexp(1))[has_r].mean()
    col_loss = (logits.logsumexp(0) - masked.logsumexp(0))[has_c].mean()
    return 0.5 * (row_loss + col_loss)


def cosine_alignment(a: Tensor, b: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Mean ``1 - cos(a[rows[k]], b[cols[k]])`` over the K pairs (0 with a graph when K = 0)."""
    if rows.numel() == 0:
        return (a.sum() + b.sum()) * 0.0
    return (1.0 - F.cosine_similarity(a[rows], b[cols], dim=1)).mean()


class PointPixelAlignment(nn.Module):
    """Projection heads and the alignment loss between voxel and pixel features.

    Args:
        point_channels: width of the SpUNet's finest level; pixel_channels: image encoder width.
        dim: shared embedding width; hidden: hidden width of both 2-layer projection MLPs
            (:class:`~geo3d.models.ssl2d.necks.ProjectionMLP`, BN + ReLU).
        loss: ``'info_nce'`` (:func:`multi_positive_info_nce`) or ``'cosine'``.
        temperature: InfoNCE temperature (0.07).
        sampling: ``'nearest'`` or ``'bilinear'`` (:func:`gather_patch_features`).
        depth_tol, min_depth: visibility test of :func:`project_to_frames` (metres).
        max_pairs: at most this many correspondences (a random subset) enter the loss.
    """

    def __init__(self, point_channels: int, pixel_channels: int, dim: int = 128,
                 hidden: int = 256, loss: AlignLoss = 'info_nce', temperature: float = 0.07,
                 sampling: Literal['nearest', 'bilinear'] = 'nearest', depth_tol: float = 0.05,
                 min_depth: float = 0.05, max_pairs: int = 4096) -> None:
        super().__init__()
        if loss not in ('info_nce', 'cosine'):
            raise ValueError(f"align loss must be 'info_nce' or 'cosine', got {loss!r}")
        if sampling not in ('nearest', 'bilinear'):
            raise ValueError(f"sampling must be 'nearest' or 'bilinear', got {sampling!r}")
        if temperature <= 0 or depth_tol <= 0 or max_pairs < 2:
            raise ValueError(f'need temperature > 0, depth_tol > 0, max_pairs >= 2; got '
                             f'{temperature}, {depth_tol}, {max_pairs}')
        self.point_proj = ProjectionMLP(point_channels, hidden, dim, num_layers=2)
        self.pixel_proj = ProjectionMLP(pixel_channels, hidden, dim, num_layers=2)
        self.loss_type = loss
        self.temperature = float(temperature)
        self.sampling = sampling
        self.depth_tol = float(depth_tol)
        self.min_depth = float(min_depth)
        self.max_pairs = int(max_pairs)

    def _zero(self) -> Tensor:
        """0 that still reaches every projection parameter (DDP sees them all used)."""
        return sum(p.sum() for p in self.parameters()) * 0.0

    def forward(self, point_feat: Tensor, matches: PointPixelMatches, tokens: Tensor,
                patch: int, grid_size: Sequence[int],
                visible: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Alignment loss over (a random subset of) the correspondences.

        Args:
            point_feat: (N, C_point) finest SpUNet features of the batch's voxels.
            matches: voxel/pixel correspondences (``frame`` indexes ``tokens``).
            tokens: (N_frames, L, C_pixel) patch features; visible: (N_frames, L) bool or None
                (see :func:`gather_patch_features`).

        Returns:
            scalar loss and stats ``{'align_pairs': K used, 'align_points': unique voxels}``.
        """
        if matches.num_matches > self.max_pairs:
            pick = torch.randperm(matches.num_matches)[:self.max_pairs].to(matches.point.device)
            matches = matches.select(pick)
        pix, pix_id, keep = gather_patch_features(tokens, matches, patch, grid_size,
                                                  self.sampling, visible)
        pts = matches.point[keep]
        a_first, b_first, rows, cols = unique_pairs(pts, pix_id)
        stats = {'align_pairs': point_feat.new_tensor(float(pts.numel())),
                 'align_points': point_feat.new_tensor(float(a_first.numel()))}
        if a_first.numel() < 2 or b_first.numel() < 2:
            return self._zero(), stats  # BatchNorm in the projectors needs 2 rows
        a = self.point_proj(point_feat[pts[a_first]])
        b = self.pixel_proj(pix[b_first])
        if self.loss_type == 'info_nce':
            loss = multi_positive_info_nce(a, b, rows, cols, self.temperature)
        else:
            loss = cosine_alignment(a, b, rows, cols)
        return loss, stats
