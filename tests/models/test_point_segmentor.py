"""PointSegmentor: loss with ignore index, prediction mapped back to original points."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from geo3d.models.segmentors.point_segmentor import PointSegmentor, split_by_offset
from geo3d.registry import MODELS
from geo3d.structures import PointBatch


@MODELS.register_module(force=True)
class PerPointMLPBackbone(BaseModule):
    """Stand-in backbone: one 'level' whose rows are the input rows."""

    def __init__(self, in_channels: int, out_channels: int = 8):
        super().__init__()
        self.mlp = nn.Linear(in_channels, out_channels)
        self.out_channels = [out_channels]

    def forward(self, points):
        return [SimpleNamespace(feat=self.mlp(points.feat), stride=1)]


def _model(k=3):
    torch.manual_seed(0)
    return PointSegmentor(backbone=dict(type='PerPointMLPBackbone', in_channels=4), num_classes=k)


def test_loss_matches_cross_entropy_with_ignore():
    m = _model()
    feat = torch.randn(6, 4)
    seg = torch.tensor([0, 1, -1, 2, -1, 1])
    pb = PointBatch(coord=torch.randn(6, 3), feat=feat, offset=torch.tensor([4, 6]),
                    extras={'segment': seg})
    loss = m(pb, mode='loss')['loss_seg']
    logits = m.head(m.backbone.mlp(feat))
    keep = seg != -1
    ref = F.cross_entropy(logits[keep], seg[keep])
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert m.backbone.mlp.weight.grad is not None and m.backbone.mlp.weight.grad.abs().sum() > 0


def test_predict_maps_voxels_back_to_points():
    m = _model()
    # two samples: 3 voxels (5 original points) and 2 voxels (3 original points)
    samples = [
        {'coord': torch.randn(3, 3), 'feat': torch.randn(3, 4), 'segment': torch.tensor([0, 1, 2]),
         'inverse': torch.tensor([0, 0, 1, 2, 2]), 'origin_segment': torch.tensor([0, 0, 1, 2, -1]),
         'name': 'a'},
        {'coord': torch.randn(2, 3), 'feat': torch.randn(2, 4), 'segment': torch.tensor([1, 2]),
         'inverse': torch.tensor([1, 0, 1]), 'origin_segment': torch.tensor([2, 1, 2]),
         'name': 'b'},
    ]
    pb = PointBatch.collate(samples)
    out = m(pb, mode='predict')
    logits = m(pb, mode='tensor')
    vox_pred = logits.argmax(1)
    assert [o['name'] for o in out] == ['a', 'b']
    assert out[0]['pred'].tolist() == vox_pred[:3][samples[0]['inverse']].tolist()
    assert out[1]['pred'].tolist() == vox_pred[3:][samples[1]['inverse']].tolist()
    assert out[0]['gt'].tolist() == [0, 0, 1, 2, -1] and out[1]['gt'].tolist() == [2, 1, 2]


def test_split_by_offset_and_bad_mode():
    parts = split_by_offset(torch.arange(5), torch.tensor([2, 5]))
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3, 4]]
    m = _model()
    pb = PointBatch(coord=torch.zeros(1, 3), feat=torch.zeros(1, 4), offset=torch.tensor([1]))
    with pytest.raises(ValueError, match='mode'):
        m(pb, mode='nope')
