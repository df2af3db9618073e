"""DCL / DCLW: decoupled contrastive learning (SimCLR without the positive in the denominator).

Yeh et al., "Decoupled Contrastive Learning", ECCV 2022 (arXiv 2110.06848). The same pipeline as
SimCLR with :class:`~geo3d.models.ssl2d.losses.DCLLoss`; the weighted variant DCLW is this
algorithm with ``loss=dict(type='DCLWLoss')`` (``configs/dclw_digits.py``).
"""
from __future__ import annotations

from torch import nn

from geo3d.registry import MODELS

from .base import TwoViewSSL


@MODELS.register_module()
class DCL(TwoViewSSL):
    """DCL (or DCLW, by the loss config) on (B, 2, 3, H, W) views.

    Args:
        backbone: backbone config. neck: projector config (default a 2-layer MLP to 128-D).
        loss: ``DCLLoss`` (default, temperature 0.1) or ``DCLWLoss``.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        loss = loss or dict(type='DCLLoss')
        if loss.get('type') not in ('DCLLoss', 'DCLWLoss'):
            raise ValueError(f"DCL: loss must be DCLLoss or DCLWLoss, got {loss.get('type')!r}")
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=128)
                         if neck is None else neck, loss, data_preprocessor, init_cfg)
