"""Moves collated point batches to the model's device."""
from __future__ import annotations

from typing import Any

from mmengine.model import BaseDataPreprocessor

from geo3d.registry import MODELS
from geo3d.structures import PointBatch


@MODELS.register_module()
class PointDataPreprocessor(BaseDataPreprocessor):
    """Data preprocessor for :class:`~geo3d.structures.PointBatch` inputs.

    ``point_collate`` produces ``{'inputs': PointBatch}`` (or a dict of views
    ``{'view0': PointBatch, ...}``); this moves every PointBatch (and tensor) to the model's
    device and returns ``{'inputs': ..., 'data_samples': ...}`` for ``BaseModel.forward``.
    """

    def cast_data(self, data: Any) -> Any:
        if isinstance(data, PointBatch):
            return data.to(self.device, non_blocking=self._non_blocking)
        return super().cast_data(data)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        return {'inputs': data['inputs'], 'data_samples': data.get('data_samples')}
