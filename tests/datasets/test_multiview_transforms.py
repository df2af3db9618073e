"""MultiViewImages / PackImageViews: torchvision pipelines from configs, view groups, RNG."""
from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2 as T
from PIL import Image

from geo3d.datasets.transforms.multiview import (MultiViewImages, PackImageViews,
                                                 build_view_transform)
from geo3d.registry import TRANSFORMS


def _img(seed: int = 0, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)


def test_build_nested_configs_and_errors() -> None:
    t = build_view_transform(dict(type='RandomApply', p=0.3, transforms=[
        dict(type='ColorJitter', brightness=0.4), dict(type='GaussianBlur', kernel_size=3)]))
    assert isinstance(t, T.RandomApply) and t.p == 0.3
    assert [type(m) for m in t.transforms] == [T.ColorJitter, T.GaussianBlur]
    crop = build_view_transform(dict(type='RandomResizedCrop', size=8, scale=[0.2, 1.0]))
    assert crop.scale == (0.2, 1.0)  # config lists become tuples
    with pytest.raises(ValueError, match="'NoSuchCrop' is not a torchvision"):
        build_view_transform(dict(type='NoSuchCrop'))
    with pytest.raises(ValueError, match='dict with a "type"'):
        build_view_transform(dict(size=3))


def test_view_groups_counts_and_order() -> None:
    mv = TRANSFORMS.build(dict(type='MultiViewImages', num_views=[1, 2], pipelines=[
        [dict(type='Resize', size=8)], [dict(type='CenterCrop', size=10)]]))
    img = _img()
    views = mv({'img': img})['views']
    assert [tuple(v.shape) for v in views] == [(3, 8, 8), (3, 10, 10), (3, 10, 10)]
    torch.testing.assert_close(views[1], img[:, 3:13, 3:13])  # deterministic group
    assert all(v.dtype == torch.uint8 for v in views)
    with pytest.raises(ValueError, match='num_views has 1 entries but there are 2'):
        MultiViewImages([[dict(type='Resize', size=8)], []], num_views=[2])
    with pytest.raises(ValueError, match='sum to >= 1'):
        MultiViewImages([[]], num_views=0)


def test_seeded_views_are_reproducible_and_leave_global_rng_alone() -> None:
    steps = [dict(type='RandomResizedCrop', size=8, scale=(0.2, 1.0))]
    a, b = MultiViewImages(steps, num_views=2, seed=3), MultiViewImages(steps, num_views=2, seed=3)
    img = _img(1)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    va, vb = a({'img': img})['views'], b({'img': img})['views']
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(va, vb))
    assert not torch.equal(va[0], va[1])  # two different random views of one image
    second = a({'img': img})['views']  # the private stream moves on
    assert not torch.equal(second[0], va[0])


def test_pil_input_and_packing() -> None:
    pil = Image.new('RGB', (12, 10), color=(10, 20, 30))
    out = MultiViewImages([dict(type='CenterCrop', size=4)], num_views=2)({'img': pil})
    assert out['views'][0].shape == (3, 4, 4) and int(out['views'][0][2, 0, 0]) == 30
    packed = PackImageViews(meta_keys=('gt_label', 'sample_idx'))(
        dict(out, gt_label=3, sample_idx=7, other='x'))
    assert len(packed['inputs']) == 2
    assert packed['data_samples'] == {'gt_label': 3, 'sample_idx': 7}
    single = PackImageViews()({'img': _img(), 'gt_label': 1})
    assert single['inputs'].shape == (3, 16, 16) and single['data_samples'] == {'gt_label': 1}
    with pytest.raises(KeyError, match=r"lacks meta keys \['sample_idx'\]"):
        PackImageViews(strict=True)({'img': _img(), 'gt_label': 1})
    with pytest.raises(KeyError, match="neither 'views' nor 'img'"):
        PackImageViews()({'gt_label': 1})
