"""Masked Scene Modeling (MSM) self-supervised pretraining of a sparse U-Net.

Hermosilla, Stippel, Sick: "Masked Scene Modeling: Narrowing the Gap Between Supervised and
Self-Supervised Learning in 3D Scene Understanding", CVPR 2025, arXiv 2504.06719. The
pretraining code is not public; this follows the paper's description (Fig. 4/5, Table 14):

* two augmented, cropped views of a scene; every view is masked by coarse patches
  (:mod:`.masking`), the student encodes its visible voxels and decodes all voxels bottom-up
  with a mask token (:mod:`.masked_unet`);
* the teacher is an EMA of the student (:class:`~geo3d.engine.hooks.EMATeacherHook`) and sees
  the FULL other view; at EVERY decoder level (bottleneck included) a per-level linear
  projector of the student predicts, at the masked voxels, the teacher's feature of the same
  level at the voxels of the other view holding the same original points (cross-view targets).

Choices where the paper is silent (all options): patch size (``mask_level``, default the
bottleneck), loss (``loss``: cosine by default) and target normalisation (``target_norm``:
per-channel standardisation over the batch's masked voxels by default, as data2vec), equal
level weights, cross-view correspondence by original point index (``target_view='cross'``; ``'same'`` uses the teacher on the full same
view), the average of the teacher features when one student voxel meets several teacher
voxels, and an eval-mode teacher (BatchNorm running statistics copied from the student by the
EMA hook, so targets do not depend on the batch).
"""
from __future__ import annotations

import copy
from typing import Any, Literal, Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from geo3d.ops.sparse import SparseLevel
from geo3d.registry import MODELS
from geo3d.structures import PointBatch, offset_to_batch

from .losses import LossType, TargetNorm, feature_loss
from .masked_unet import MaskedLevel, MaskTokens, masked_unet_forward
from .masking import match_keys, match_voxels, random_patch_mask


def point_keys(batch: Tensor, index: Tensor, span: int) -> Tensor:
    """(N,) int64 key of (sample, original point index); ``span`` > every index."""
    return batch.long() * span + index.long()


@MODELS.register_module()
class MSM(BaseModel):
    """Student/teacher masked scene modeling over two views.

    Args:
        backbone: config of the student (an ``SpUNet``); the teacher is a copy of it.
        mask_ratio: fraction of every sample's patches that are masked (paper: 0.4).
        mask_level: patches are the voxels of stride ``2^mask_level`` (None: the bottleneck,
            ``2^L``); must be in 1..L.
        target_view: ``'cross'`` (teacher on the other full view, matched by original point
            index) or ``'same'`` (teacher on the full same view).
        loss: ``'cosine'`` or ``'smooth_l1'`` (see :func:`.losses.feature_loss`).
        target_norm: ``'layer'``, ``'standardize'`` or ``'none'``.
        smooth_l1_beta: Smooth-L1 beta.
        level_weights: one weight per level, coarsest first (default all 1).
        skip_token: learnable skip tokens for masked voxels (False: zeros).
        mask_token_at: where the mask token enters the coarsest level (see
            :func:`.masked_unet.masked_unet_forward`).
        views: the input keys of the two views.
    """

    def __init__(self, backbone: dict, mask_ratio: float = 0.4, mask_level: int | None = None,
                 target_view: Literal['cross', 'same'] = 'cross', loss: LossType = 'cosine',
                 target_norm: TargetNorm = 'standardize', smooth_l1_beta: float = 1.0,
                 level_weights: Sequence[float] | None = None, skip_token: bool = True,
                 mask_token_at: Literal['bottleneck', 'bottleneck_input'] = 'bottleneck',
                 views: Sequence[str] = ('view0', 'view1'),
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='PointDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(backbone)
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        n = self.student.num_stages
        self.mask_level = n if mask_level is None else int(mask_level)
        if not 1 <= self.mask_level <= n:
            raise ValueError(f'mask_level must be in 1..{n}, got {mask_level}')
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
        if target_view not in ('cross', 'same'):
            raise ValueError(f"target_view must be 'cross' or 'same', got {target_view!r}")
        if len(views) != 2:
            raise ValueError(f'MSM needs two views, got {views}')
        channels = list(self.student.out_channels)
        weights = [1.0] * len(channels) if level_weights is None else list(level_weights)
        if len(weights) != len(channels):
            raise ValueError(f'level_weights needs {len(channels)} entries, got {weights}')
        self.mask_tokens = MaskTokens.for_unet(self.student, skip_token)
        self.projectors = nn.ModuleList([nn.Linear(c, c) for c in channels])
        self.mask_ratio = mask_ratio
        self.target_view = target_view
        self.loss_type = loss
        self.target_norm = target_norm
        self.smooth_l1_beta = smooth_l1_beta
        self.level_weights = weights
        self.views = tuple(views)
        self.mask_token_at = mask_token_at

    # ------------------------------------------------------------------ module state
    def init_weights(self) -> None:
        super().init_weights()
        self.teacher.load_state_dict(self.student.state_dict())

    def train(self, mode: bool = True) -> 'MSM':
        super().train(mode)
        self.teacher.eval()  # targets use running statistics (copied from the student)
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: PointBatch | dict[str, PointBatch], data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            if not isinstance(inputs, dict):
                raise TypeError('MSM loss mode needs a dict of views (MultiViewGenerator)')
            return self.loss(inputs)
        if mode in ('tensor', 'predict'):
            points = inputs[self.views[0]] if isinstance(inputs, dict) else inputs
            return self.student(points)
        raise ValueError(f'unknown mode {mode!r}')

    def mask(self, points: PointBatch) -> Tensor:
        """(N,) bool visible voxels of a view (random patches masked, torch's global RNG)."""
        pm = random_patch_mask(points.grid_coord.cpu(), points.batch.cpu(),
                               2 ** self.mask_level, self.mask_ratio)
        masked = pm.level_mask(points.grid_coord.cpu(), points.batch.cpu(), 1)
        return (~masked).to(points.device)

    def loss(self, inputs: dict[str, PointBatch]) -> dict[str, Tensor]:
        """Mean over both directions of the per-level masked feature losses."""
        views = [inputs[k] for k in self.views]
        with torch.no_grad():
            teach = [self.teacher(v) for v in views]
        totals: list[Tensor] = [views[0].feat.new_zeros(()) for _ in self.level_weights]
        cover = []
        for a, b in ((0, 1), (1, 0)):
            pred = masked_unet_forward(self.student, views[a], self.mask(views[a]),
                                       self.mask_tokens, self.mask_token_at)
            src = b if self.target_view == 'cross' else a
            for i, lv in enumerate(pred):
                target, valid = self.targets(views[a], self.views[a], lv, views[src],
                                             self.views[src], teach[src][i], same=src == a)
                sel = lv.masked & valid
                p = self.projectors[i](lv.level.feat[sel])
                totals[i] = totals[i] + 0.5 * feature_loss(
                    p, target[sel], self.loss_type, self.target_norm, self.smooth_l1_beta)
                if i == len(pred) - 1:
                    cover.append(sel.sum() / lv.masked.sum().clamp(min=1))
        out = {f'loss_l{i}': w * t for i, (w, t) in enumerate(zip(self.level_weights, totals))}
        out['target_cover'] = torch.stack(cover).mean().detach()
        return out

    @staticmethod
    def correspondences(points: PointBatch, name: str, tpoints: PointBatch,
                        tname: str) -> tuple[Tensor, Tensor]:
        """Rows ``i`` (K,) of ``points`` and ``j`` (K,) of ``tpoints`` with the same original point.

        Uses ``<name>_index`` (original point of every row). When the teacher's view carries
        ``origin_index`` (the original points it voxelized, from ``GridSample(return_inverse=True,
        origin_keys=('index',))``) with ``inverse`` and ``origin_offset``, ``j`` is the teacher's
        voxel CONTAINING row ``i``'s point (every point of the overlap matches); otherwise only
        points that both views kept match (a random-sampling GridSample keeps different points
        per view, so this is sparse at the finest level).
        """
        ia = points[f'{name}_index']
        if 'origin_index' in tpoints and 'inverse' in tpoints:
            ob = tpoints['origin_index']
            bb = offset_to_batch(tpoints['origin_offset'])
            span = int(max(int(ia.max()), int(ob.max()))) + 1
            pos = match_keys(point_keys(points.batch, ia, span), point_keys(bb, ob, span))
            i = torch.nonzero(pos >= 0).squeeze(1)
            return i, tpoints['inverse'][pos[i]]
        ib = tpoints[f'{tname}_index']
        span = int(max(int(ia.max()), int(ib.max()))) + 1
        j = match_keys(point_keys(points.batch, ia, span), point_keys(tpoints.batch, ib, span))
        i = torch.nonzero(j >= 0).squeeze(1)
        return i, j[i]

    def targets(self, points: PointBatch, name: str, lv: MaskedLevel, tpoints: PointBatch,
                tname: str, tlevel: SparseLevel, same: bool) -> tuple[Tensor, Tensor]:
        """Teacher targets for every voxel of a student level.

        Args:
            points / name: the student's view and its key; lv: a level of its masked pass
                (M voxels).
            tpoints / tname: the teacher's view; tlevel: the teacher's level of same stride.
            same: the teacher saw the same view (voxels correspond one to one).

        Returns:
            (M, C) targets and (M,) bool, True where a voxel has a target. Cross-view: the
            mean of the teacher features at the voxels of the other view that hold the same
            original points as this voxel's level-0 rows.
        """
        stride = lv.level.stride
        if same:
            row = match_voxels(lv.level.grid_coord, lv.level.batch, tlevel.grid_coord,
                               tlevel.batch)
            valid = row >= 0
            return tlevel.feat[row.clamp(min=0)], valid
        i, j = self.correspondences(points, name, tpoints, tname)
        t_row = match_voxels(torch.div(tpoints.grid_coord[j], stride, rounding_mode='floor'),
                             tpoints.batch[j], tlevel.grid_coord, tlevel.batch)
        s_row = match_voxels(torch.div(points.grid_coord[i], stride, rounding_mode='floor'),
                             points.batch[i], lv.level.grid_coord, lv.level.batch)
        m = lv.level.num_voxels
        total = tlevel.feat.new_zeros(m, tlevel.feat.shape[1]).index_add_(
            0, s_row, tlevel.feat[t_row])
        count = torch.bincount(s_row, minlength=m)
        valid = count > 0
        return total / count.clamp(min=1)[:, None].to(total.dtype), valid
