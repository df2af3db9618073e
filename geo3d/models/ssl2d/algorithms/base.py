"""Shared skeleton of the 2D SSL algorithms (mmpretrain's ``BaseSelfSupervisor`` layout).

An algorithm owns a backbone ((B, 3, H, W) -> (B, C)), a neck (the projector) and a loss, all
built from configs in geo3d's ``MODELS``. Batches come from
:class:`~geo3d.models.data_preprocessors.ImageViewsDataPreprocessor`: ``inputs`` is
(B, V, 3, H, W) (views of each image) and ``data_samples`` a dict of (B,) tensors
(``gt_label``, ``sample_idx``).

``forward(inputs, data_samples, mode)``:

* ``'loss'``: a dict of losses (every key holding ``'loss'`` is summed by mmengine);
* ``'tensor'`` / ``'predict'``: backbone features (B, C) of (B, 3, H, W) images (of view 0
  for (B, V, 3, H, W) inputs) — what the frozen-feature probes read.

All views of a batch go through the backbone in one pass (view-major (V B, 3, H, W)), so
BatchNorm statistics are shared by the views, as in SimCLR's implementation.
"""
from __future__ import annotations

import copy
from typing import Any

from mmengine.model import BaseModel
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['BaseSSL2D', 'TwoViewSSL', 'MultiViewSSL', 'build_preprocessor', 'sample_values']


def build_preprocessor(cfg: dict | nn.Module | None) -> nn.Module:
    """The data preprocessor (default :class:`ImageViewsDataPreprocessor`), built in geo3d's
    registry (mmengine's BaseModel would look in its own root registry)."""
    if isinstance(cfg, nn.Module):
        return cfg
    return MODELS.build(cfg or dict(type='ImageViewsDataPreprocessor'))


def sample_values(owner: str, data_samples: Any, key: str, batch: int, hint: str) -> Tensor:
    """``data_samples[key]`` as a (batch,) tensor, or a ValueError that says what is missing."""
    if not isinstance(data_samples, dict) or key not in data_samples:
        have = sorted(data_samples) if isinstance(data_samples, dict) else type(data_samples)
        raise ValueError(f"{owner}: needs data_samples['{key}'] ({hint}); got {have}")
    value = data_samples[key]
    if not isinstance(value, Tensor) or value.shape != (batch,):
        raise ValueError(f"{owner}: data_samples['{key}'] must be a ({batch},) tensor, got "
                         f'{value!r:.80}')
    return value


class BaseSSL2D(BaseModel):
    """Backbone + neck + loss.

    Args:
        backbone: backbone config (must expose ``out_channels``).
        neck: projector config; ``in_channels`` defaults to ``backbone.out_channels``. None =
            no projector (the loss sees backbone features).
        loss: loss config.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    #: fewest views ``loss`` needs (None: any number >= 1).
    min_views: int | None = 2

    def __init__(self, backbone: dict, neck: dict | None, loss: dict,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=build_preprocessor(data_preprocessor),
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            neck = copy.deepcopy(dict(neck))
            neck.setdefault('in_channels', int(self.backbone.out_channels))
            self.neck: nn.Module = MODELS.build(neck)
        else:
            self.neck = nn.Identity()
        self.loss_module = MODELS.build(loss)

    @property
    def owner(self) -> str:
        return type(self).__name__

    def extract_feat(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, C) backbone features."""
        return self.backbone(images)

    def project(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, ...) neck outputs."""
        return self.neck(self.backbone(images))

    def views(self, inputs: Tensor) -> Tensor:
        """Check that ``inputs`` is (B, V, 3, H, W) with V >= ``min_views``."""
        if not isinstance(inputs, Tensor) or inputs.ndim != 5:
            shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(f'{self.owner}: inputs must be views (B, V, 3, H, W) (use '
                             f'MultiViewImages + PackImageViews), got {shape}')
        if self.min_views is not None and inputs.shape[1] < self.min_views:
            raise ValueError(f'{self.owner}: needs at least {self.min_views} views per image, '
                             f'got {inputs.shape[1]}')
        return inputs

    def embed(self, views: Tensor) -> Tensor:
        """(B, V, 3, H, W) -> (B, V, ...) neck outputs, all views in one backbone pass."""
        b, v = views.shape[:2]
        z = self.project(views.transpose(0, 1).flatten(0, 1))  # view-major (V B, ...)
        return z.view(v, b, *z.shape[1:]).transpose(0, 1)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def forward(self, inputs: Tensor, data_samples: Any = None, mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('tensor', 'predict'):
            if isinstance(inputs, Tensor) and inputs.ndim == 5:
                inputs = inputs[:, 0]
            return self.extract_feat(inputs)
        raise ValueError(f'{self.owner}: unknown mode {mode!r} (loss, tensor or predict)')


class TwoViewSSL(BaseSSL2D):
    """Algorithms whose loss takes the embeddings of two views: ``loss(z_a, z_b)``."""

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        if views.shape[1] != 2:
            raise ValueError(f'{self.owner}: needs exactly 2 views per image, got '
                             f'{views.shape[1]}')
        z = self.embed(views)
        return {'loss': self.loss_module(z[:, 0], z[:, 1])}


class MultiViewSSL(BaseSSL2D):
    """Algorithms whose loss takes all V views at once: ``loss(z)`` with z (B, V, D)."""

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        return {'loss': self.loss_module(self.embed(self.views(inputs)))}
