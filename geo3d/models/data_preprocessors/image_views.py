"""Stacks and normalises image views (2D SSL, image probes) on the model's device."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from geo3d.registry import MODELS

__all__ = ['ImageViewsDataPreprocessor']


def _stack(value: Sequence[Tensor], name: str) -> Tensor:
    shapes = {tuple(v.shape) for v in value}
    if len(shapes) != 1:
        raise ValueError(f'ImageViewsDataPreprocessor: {name} must all have one shape to be '
                         f'stacked, got {sorted(shapes)}')
    return torch.stack(list(value))


@MODELS.register_module()
class ImageViewsDataPreprocessor(BaseDataPreprocessor):
    """Batches of :class:`~geo3d.datasets.transforms.PackImageViews` samples -> model inputs.

    Accepted ``inputs`` (B samples, V views, ``default_collate`` or ``pseudo_collate``):

    * (B, 3, H, W) tensor, or a list of B (3, H, W) tensors: single images;
    * a list of V (B, 3, H, W) tensors, or a list of V lists of B (3, H, W) tensors: views;
    * a (B, V, 3, H, W) tensor: views.

    uint8 images are scaled to [0, 1] (floats are taken as already in [0, 1]) and normalised
    with ``mean``/``std`` on the device.

    Returns ``{'inputs': x, 'data_samples': d}`` with x (B, 3, H, W) for single images or
    (B, V, 3, H, W) for views (float32), and d the per-sample values as (B,) tensors (lists of
    numbers are turned into tensors), e.g. ``gt_label`` and ``sample_idx``.

    Args:
        mean, std: per-channel statistics in [0, 1] units (default 0.5: maps [0, 1] to [-1, 1]).
        non_blocking: as mmengine's ``BaseDataPreprocessor``.
    """

    def __init__(self, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        if len(mean) != len(std):
            raise ValueError(f'ImageViewsDataPreprocessor: mean has {len(mean)} channels but std '
                             f'has {len(std)}')
        if any(s <= 0 for s in std):
            raise ValueError(f'ImageViewsDataPreprocessor: std must be > 0, got {tuple(std)}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)

    @staticmethod
    def stack_inputs(inputs: Any) -> Tensor:
        """The accepted input layouts (class docstring) as one (B[, V], C, H, W) tensor."""
        if isinstance(inputs, Tensor):
            if inputs.ndim not in (4, 5):
                raise ValueError(f'ImageViewsDataPreprocessor: inputs must be (B, C, H, W) or '
                                 f'(B, V, C, H, W), got shape {tuple(inputs.shape)}')
            return inputs
        if not isinstance(inputs, Sequence) or not inputs:
            raise TypeError(f'ImageViewsDataPreprocessor: inputs must be a tensor or a non-empty '
                            f'list, got {type(inputs).__name__}')
        first = inputs[0]
        if isinstance(first, Tensor) and first.ndim == 3:  # B single images
            return _stack(inputs, 'images')
        if isinstance(first, Tensor) and first.ndim == 4:  # V stacked views
            return _stack(inputs, 'views').transpose(0, 1)
        if isinstance(first, Sequence):  # V lists of B images
            return _stack([_stack(v, f'view {i} images') for i, v in enumerate(inputs)],
                          'views').transpose(0, 1)
        raise TypeError('ImageViewsDataPreprocessor: inputs must be (3, H, W) images, '
                        '(B, 3, H, W) views or lists of images per view')

    def normalize(self, x: Tensor) -> Tensor:
        """(..., C, H, W) uint8 or [0, 1] float -> normalised float32."""
        if x.shape[-3] != self.mean.shape[0]:
            raise ValueError(f'ImageViewsDataPreprocessor: images have {x.shape[-3]} channels but '
                             f'mean/std have {self.mean.shape[0]}')
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std

    def _samples(self, data_samples: Any) -> Any:
        if not isinstance(data_samples, dict):
            return data_samples
        out = {}
        for k, v in data_samples.items():
            if isinstance(v, Sequence) and not isinstance(v, str) and v and \
                    all(isinstance(e, (int, float, bool)) for e in v):
                v = torch.tensor(v)
            out[k] = v
        return out

    def forward(self, data: dict, training: bool = False) -> dict:
        if not isinstance(data, dict) or 'inputs' not in data:
            raise KeyError("ImageViewsDataPreprocessor expects the dataloader's dict with an "
                           "'inputs' key")
        x = self.stack_inputs(data['inputs'])
        out = self.cast_data({'inputs': x,
                              'data_samples': self._samples(data.get('data_samples'))})
        out['inputs'] = self.normalize(out['inputs'])
        return out
