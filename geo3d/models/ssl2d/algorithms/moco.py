"""MoCo v2 (momentum key encoder + queue of negatives) and MoCHi (hard negative mixing).

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020; Chen
et al., "Improved Baselines with Momentum Contrastive Learning" (MoCo v2, arXiv 2003.04297);
Kalantidis et al., "Hard Negative Mixing for Contrastive Learning" (MoCHi), NeurIPS 2020.

One training step on views (B, 2, 3, H, W):

1. queries ``q = neck(backbone(x_0))`` (trained);
2. the key encoder (``momentum_backbone``, ``momentum_neck``) is updated without gradient,
   ``theta_k <- m theta_k + (1 - m) theta_q`` (:func:`geo3d.engine.hooks.ema_update`, which also
   copies the BN buffers; the key encoder runs in train mode, so they are never used), then
   keys ``k = momentum_neck(momentum_backbone(x_1))``;
3. loss :class:`~geo3d.models.ssl2d.losses.MoCHiLoss` of q against k, the queue and, for
   MoCHi, synthetic hard negatives mixed from the hardest queue entries (plain InfoNCE before
   ``mix_start_iter`` and for MoCo v2). With ``symmetric`` the roles of the views are swapped
   too and the two losses averaged (as MoCo v3 and solo-learn's MoCo v2+; both against the
   same queue);
4. the L2-normalised keys of view 1 of the global batch (gathered across ranks, rank order)
   replace the oldest queue rows: rows ``(ptr + i) % K`` for i < B_global, then
   ``ptr <- (ptr + B_global) % K``.

The queue (K, D), its pointer and the step counter are buffers: checkpoints hold them and
``--resume`` restores them. Not implemented: MoCo's shuffling BN across GPUs.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from .base import BaseSSL2D

__all__ = ['MoCoV2', 'MoCHi']


@MODELS.register_module()
class MoCoV2(BaseSSL2D):
    """MoCo v2 with an optional MoCHi loss.

    Args:
        backbone: backbone config.
        neck: projector config (default MoCo v2's 2-layer MLP without BN, 2048 -> 128).
        loss: ``MoCHiLoss`` config (default temperature 0.2 and no mixing = MoCo v2).
        queue_size: K, negatives in the queue (MoCo: 65536; keep it below the dataset size).
        momentum: m of the key-encoder update (MoCo: 0.999).
        mix_start_iter: training steps with plain InfoNCE before the loss's mixing starts
            (MoCHi's warm-up).
        symmetric: also use view 1 as queries against the keys of view 0 (twice the queries
            per step); False is MoCo v2's asymmetric loss.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 queue_size: int = 65536, momentum: float = 0.999, mix_start_iter: int = 0,
                 symmetric: bool = False, data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        loss = dict(loss or dict(type='MoCHiLoss', temperature=0.2, num_mix=0,
                                 num_query_mix=0))
        if loss.get('type') != 'MoCHiLoss':
            raise ValueError(f"{type(self).__name__}: loss must be a MoCHiLoss config, got "
                             f"{loss.get('type')!r}")
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=128,
                              with_bn=False) if neck is None else neck,
                         loss, data_preprocessor, init_cfg)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'{self.owner}: momentum must lie in [0, 1], got {momentum}')
        if int(queue_size) < 1:
            raise ValueError(f'{self.owner}: queue_size must be >= 1, got {queue_size}')
        mixing = self.loss_module.num_mix or self.loss_module.num_query_mix
        if mixing and int(queue_size) < self.loss_module.num_hard:
            raise ValueError(f'{self.owner}: queue_size {queue_size} is smaller than the '
                             f"loss's num_hard={self.loss_module.num_hard}")
        if int(mix_start_iter) < 0:
            raise ValueError(f'{self.owner}: mix_start_iter must be >= 0, got {mix_start_iter}')
        self.momentum = float(momentum)
        self.mix_start_iter = int(mix_start_iter)
        self.symmetric = bool(symmetric)
        self.plain_loss = MODELS.build(dict(loss, num_mix=0, num_query_mix=0))
        self.momentum_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.momentum_neck = copy.deepcopy(self.neck).requires_grad_(False)
        dim = int(getattr(self.neck, 'out_channels', 0) or self.backbone.out_channels)
        self.register_buffer('queue', F.normalize(torch.randn(int(queue_size), dim), dim=1))
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))

    def init_weights(self) -> None:
        """Initialise the query encoder, then copy it into the key encoder (MoCo's init)."""
        super().init_weights()
        self.momentum_backbone.load_state_dict(self.backbone.state_dict())
        self.momentum_neck.load_state_dict(self.neck.state_dict())

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` for backbone and neck."""
        # imported here: geo3d.engine's hooks may import geo3d.models (no import cycle)
        from geo3d.engine.hooks.ema_teacher import ema_update
        ema_update(self.momentum_backbone, self.backbone, self.momentum)
        ema_update(self.momentum_neck, self.neck, self.momentum)

    @torch.no_grad()
    def keys(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, D) L2-normalised keys of the key encoder."""
        return F.normalize(self.momentum_neck(self.momentum_backbone(images)), dim=1)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write the keys of the global batch over the oldest queue rows (see module doc)."""
        keys = gather_cat(keys.detach(), 'keys')
        size = self.queue.shape[0]
        if keys.shape[0] > size:  # only the newest K keys fit
            keys = keys[-size:]
        ptr = int(self.queue_ptr)
        rows = (ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[rows] = keys.to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + keys.shape[0]) % size)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        if views.shape[1] != 2:
            raise ValueError(f'{self.owner}: needs exactly 2 views per image, got '
                             f'{views.shape[1]}')
        if self.symmetric:  # both views as queries in one pass
            q_both = self.embed(views)
            q, q_1 = q_both[:, 0], q_both[:, 1]
        else:
            q = self.project(views[:, 0])
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            k = self.keys(views[:, 1])
            k_0 = self.keys(views[:, 0]) if self.symmetric else None
        mixing = int(self.num_steps) >= self.mix_start_iter
        loss_fn = self.loss_module if mixing else self.plain_loss
        queue = self.queue.clone()
        loss = loss_fn(q, k, queue)
        if self.symmetric:
            loss = 0.5 * (loss + loss_fn(q_1, k_0, queue))
        if self.training:
            self.enqueue(k)
            self.num_steps += 1
        return {'loss': loss}


@MODELS.register_module()
class MoCHi(MoCoV2):
    """MoCo v2 with MoCHi's hard negative mixing on by default.

    Defaults: ``MoCHiLoss(temperature=0.2, num_hard=1024, num_mix=1024, num_query_mix=128)``
    (the paper's MoCHi(1024, 1024, 128)); other arguments as :class:`MoCoV2`.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 queue_size: int = 65536, momentum: float = 0.999, mix_start_iter: int = 0,
                 symmetric: bool = False, data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone, neck,
                         loss or dict(type='MoCHiLoss', temperature=0.2, num_hard=1024,
                                      num_mix=1024, num_query_mix=128),
                         queue_size, momentum, mix_start_iter, symmetric, data_preprocessor,
                         init_cfg)
