"""Moves multi-frame image batches (self-supervised depth) to the model's device, stacked."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from geo3d.registry import MODELS

__all__ = ['MultiFrameDataPreprocessor', 'stack_batch']


def stack_batch(value: Any, name: str) -> Tensor:
    """A batch tensor from a stacked tensor or a list of per-sample tensors (``pseudo_collate``).

    Raises:
        ValueError: the per-sample tensors differ in shape (the message names ``name``).
        TypeError: ``value`` is neither a tensor nor a non-empty sequence of tensors.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Sequence) and value and all(isinstance(v, Tensor) for v in value):
        shapes = {tuple(v.shape) for v in value}
        if len(shapes) != 1:
            raise ValueError(f'{name}: samples of one batch must have one shape, got '
                             f'{sorted(shapes)}')
        return torch.stack(list(value))
    raise TypeError(f'{name} must be a tensor or a list of per-sample tensors, got '
                    f'{type(value).__name__}')


@MODELS.register_module()
class MultiFrameDataPreprocessor(BaseDataPreprocessor):
    """Data preprocessor of :class:`~geo3d.datasets.KITTIRawDataset`-style batches.

    A batch from ``default_collate`` is ``{'inputs': {'color': [S x (B, F, 3, H_s, W_s)],
    'color_aug': [...], 'K': (B, S, 4, 4), 'inv_K': (B, S, 4, 4)[, 'stereo_T': (B, 4, 4)]},
    'data_samples': [B elements]}``. ``pseudo_collate`` (mmengine's default ``collate_fn``)
    gives lists of per-sample tensors instead; they are stacked here, so either works. Every
    tensor and data element is moved to the model's device. A bare image tensor
    ``(B, 3, H, W)`` (inference) is moved and passed through.
    """

    #: input keys that are per-scale lists; the others are single batch tensors.
    PYRAMID_KEYS = ('color', 'color_aug')

    def forward(self, data: dict, training: bool = False) -> dict:
        if not isinstance(data, dict) or 'inputs' not in data:
            raise KeyError("MultiFrameDataPreprocessor expects the dataloader's dict with an "
                           "'inputs' key")
        inputs = data['inputs']
        if isinstance(inputs, dict):
            inputs = self._stack_inputs(inputs)
        elif not isinstance(inputs, Tensor):
            inputs = stack_batch(inputs, 'inputs')
        return self.cast_data({'inputs': inputs, 'data_samples': data.get('data_samples')})

    def _stack_inputs(self, inputs: dict) -> dict:
        out: dict[str, Any] = {}
        for key, value in inputs.items():
            if key in self.PYRAMID_KEYS:
                if isinstance(value, Tensor) or not isinstance(value, Sequence):
                    raise TypeError(f"inputs[{key!r}] must be a list over scales, got "
                                    f'{type(value).__name__}')
                out[key] = [stack_batch(v, f'inputs[{key!r}][{s}]') for s, v in enumerate(value)]
            elif isinstance(value, Tensor) or (isinstance(value, Sequence) and value and
                                               isinstance(value[0], Tensor)):
                out[key] = stack_batch(value, f'inputs[{key!r}]')
            else:
                out[key] = value
        return out
