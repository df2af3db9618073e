"""ScanNetDataset on tiny processed scenes written in tmp_path; pipeline + collate end to end."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS as MM_DATASETS
from mmengine.registry import FUNCTIONS as MM_FUNCTIONS
from mmengine.registry import DefaultScope

from geo3d.datasets import ScanNetDataset, point_collate
from geo3d.datasets.scannet_constants import CLASS_LABELS_20, CLASS_LABELS_200
from geo3d.registry import DATASETS, FUNCTIONS
from geo3d.structures import PointBatch


def write_scene(root: str, scene: str, n: int, seed: int, skip: tuple[str, ...] = ()) -> dict:
    rng = np.random.default_rng(seed)
    theta = 0.3
    align = np.eye(4, dtype=np.float32)
    align[:2, :2] = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    align[:3, 3] = [1.0, -2.0, 0.5]
    normal = rng.normal(size=(n, 3))
    arrays = {
        'coord': rng.uniform(0, 4, size=(n, 3)).astype(np.float32),
        'color': rng.integers(0, 256, size=(n, 3)).astype(np.uint8),
        'normal': (normal / np.linalg.norm(normal, axis=1, keepdims=True)).astype(np.float32),
        'segment20': rng.integers(-1, 20, size=n).astype(np.int16),
        'segment200': rng.integers(-1, 200, size=n).astype(np.int16),
        'instance': rng.integers(-1, 5, size=n).astype(np.int16),
        'axis_align_matrix': align,
    }
    d = os.path.join(root, 'scenes', scene)
    os.makedirs(d, exist_ok=True)
    for k, v in arrays.items():
        if k not in skip:
            np.save(os.path.join(d, f'{k}.npy'), v)
    return arrays


def write_split(root: str, split: str, scenes: list[str]) -> None:
    os.makedirs(os.path.join(root, 'splits'), exist_ok=True)
    with open(os.path.join(root, 'splits', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(scenes) + '\n')


@pytest.fixture()
def data_root(tmp_path) -> str:
    root = str(tmp_path / 'scannet')
    for i, n in enumerate((300, 200, 250)):
        write_scene(root, f'scene000{i}_00', n, i)
    write_split(root, 'train', ['scene0000_00', 'scene0001_00'])
    write_split(root, 'val', ['scene0002_00'])
    return root


def test_loading_fields_and_dtypes(data_root):
    ds = ScanNetDataset(data_root, split='train')
    assert len(ds) == 2
    d = ds.get_data(0)
    raw = {k: np.load(os.path.join(data_root, 'scenes', 'scene0000_00', f'{k}.npy'))
           for k in ('coord', 'color', 'normal', 'segment20', 'instance')}
    assert d['name'] == 'scene0000_00'
    assert d['coord'].dtype == np.float32 and d['coord'].shape == (300, 3)
    assert d['color'].dtype == np.float32 and d['color'].max() <= 255
    np.testing.assert_array_equal(d['color'], raw['color'].astype(np.float32))
    np.testing.assert_array_equal(d['normal'], raw['normal'])
    assert d['segment'].dtype == np.int64 and d['instance'].dtype == np.int64
    np.testing.assert_array_equal(d['segment'], raw['segment20'])
    np.testing.assert_array_equal(d['instance'], raw['instance'])
    meta = ds.metainfo
    assert meta['classes'] == CLASS_LABELS_20 and meta['ignore_index'] == -1
    assert meta['label_set'] == 'scannet20'


def test_label_set_switch(data_root):
    ds = ScanNetDataset(data_root, split='val', label_set='scannet200')
    raw = np.load(os.path.join(data_root, 'scenes', 'scene0002_00', 'segment200.npy'))
    np.testing.assert_array_equal(ds.get_data(0)['segment'], raw)
    assert ds.metainfo['classes'] == CLASS_LABELS_200 and len(ds.metainfo['classes']) == 200
    with pytest.raises(ValueError, match='label_set'):
        ScanNetDataset(data_root, label_set='nyu40')


def test_multiple_splits_loop_and_max_scenes(data_root):
    ds = ScanNetDataset(data_root, split=['train', 'val'], loop=3)
    assert len(ds) == 9
    names = [ds[i]['name'] for i in range(len(ds))]
    assert names[:3] == ['scene0000_00', 'scene0001_00', 'scene0002_00'] and names[3:6] == names[:3]
    with pytest.raises(IndexError):
        ds[9]
    assert len(ScanNetDataset(data_root, split=['train', 'val'], max_scenes=1)) == 1


def test_axis_align(data_root):
    raw = ScanNetDataset(data_root, split='val').get_data(0)
    al = ScanNetDataset(data_root, split='val', axis_align=True).get_data(0)
    a = np.load(os.path.join(data_root, 'scenes', 'scene0002_00', 'axis_align_matrix.npy'))
    homog = np.concatenate([raw['coord'], np.ones((raw['coord'].shape[0], 1))], 1)
    np.testing.assert_allclose(al['coord'], (homog @ a.T)[:, :3], atol=1e-5)
    np.testing.assert_allclose(al['normal'], raw['normal'] @ a[:3, :3].T, atol=1e-6)


def test_missing_root_split_and_scene_errors(tmp_path, data_root):
    with pytest.raises(FileNotFoundError, match='data_converters/scannet.py') as e:
        ScanNetDataset(str(tmp_path / 'nowhere'))
    assert 'make demo' in str(e.value)
    with pytest.raises(FileNotFoundError, match='test.txt'):
        ScanNetDataset(data_root, split='test')
    write_split(data_root, 'broken', ['scene0000_00', 'scene9999_00'])
    with pytest.raises(FileNotFoundError, match='scene9999_00'):
        ScanNetDataset(data_root, split='broken')


@pytest.mark.parametrize('field', ['coord', 'color', 'normal', 'segment20', 'instance'])
def test_missing_field_names_the_file(data_root, field):
    write_scene(data_root, 'scene0005_00', 50, 5, skip=(field,))
    write_split(data_root, 'train', ['scene0005_00'])
    ds = ScanNetDataset(data_root, split='train')
    with pytest.raises(RuntimeError, match=f'scene0005_00.*{field}.npy'):
        ds.get_data(0)


def test_corrupt_and_malformed_files(data_root):
    write_scene(data_root, 'scene0006_00', 50, 6)
    write_split(data_root, 'train', ['scene0006_00'])
    ds = ScanNetDataset(data_root, split='train')
    scene_dir = os.path.join(data_root, 'scenes', 'scene0006_00')
    with open(os.path.join(scene_dir, 'normal.npy'), 'wb') as f:
        f.write(b'not a numpy file')
    with pytest.raises(RuntimeError, match='normal.npy'):
        ds.get_data(0)
    np.save(os.path.join(scene_dir, 'normal.npy'), np.zeros((49, 3), np.float32))
    with pytest.raises(RuntimeError, match=r'normal.npy.*shape'):
        ds.get_data(0)
    np.save(os.path.join(scene_dir, 'normal.npy'), np.zeros((50, 3), np.float32))
    np.save(os.path.join(scene_dir, 'segment20.npy'), np.full(50, 25, np.int16))
    with pytest.raises(RuntimeError, match='segment20.npy'):
        ds.get_data(0)


def test_unlabelled_test_split_gets_ignore_labels(data_root):
    write_scene(data_root, 'scene0707_00', 40, 7, skip=('segment20', 'segment200', 'instance'))
    write_split(data_root, 'test', ['scene0707_00'])
    d = ScanNetDataset(data_root, split='test', test_mode=True).get_data(0)
    assert (d['segment'] == -1).all() and (d['instance'] == -1).all()


TRAIN_PIPELINE = [
    dict(type='CenterShift', apply_z=True),
    dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
    dict(type='RandomScale', scale=(0.9, 1.1)),
    dict(type='RandomFlip', p=0.5),
    dict(type='RandomJitter', sigma=0.005, clip=0.02),
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    dict(type='GridSample', grid_size=0.2, mode='train', sample='random'),
    dict(type='SphereCrop', point_max=150, mode='random'),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'segment'), feat_keys=('color', 'normal')),
]
VAL_PIPELINE = [
    dict(type='CenterShift', apply_z=True),
    dict(type='GridSample', grid_size=0.2, mode='test', sample='first', return_inverse=True),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'segment', 'inverse', 'origin_segment'),
         feat_keys=('color', 'normal')),
]


def test_train_pipeline_and_collate_end_to_end(data_root):
    ds = ScanNetDataset(data_root, split='train', pipeline=TRAIN_PIPELINE)
    batch = point_collate([ds[0], ds[1]])
    pb = batch['inputs']
    assert isinstance(pb, PointBatch)
    assert pb.batch_size == 2 and pb.feat.shape == (pb.num_points, 6)
    assert pb.grid_coord.dtype == torch.int64 and pb.grid_size == 0.2
    assert pb['segment'].shape == (pb.num_points,)
    assert [m['name'] for m in pb.meta] == ['scene0000_00', 'scene0001_00']
    assert int(torch.diff(pb.offset, prepend=pb.offset.new_zeros(1)).max()) <= 150


def test_val_pipeline_maps_back_to_original_points(data_root):
    ds = ScanNetDataset(data_root, split=['train', 'val'], pipeline=VAL_PIPELINE, test_mode=True)
    samples = [ds[i] for i in range(3)]
    pb = point_collate(samples)['inputs']
    raw = [ds.get_data(i) for i in range(3)]
    assert pb['origin_offset'].tolist() == np.cumsum([len(r['coord']) for r in raw]).tolist()
    np.testing.assert_array_equal(pb['origin_segment'].numpy(),
                                  np.concatenate([r['segment'] for r in raw]))
    # every original point maps to a voxel row of its own scene, with the right grid cell
    inv = pb['inverse']
    origin_batch = torch.repeat_interleave(torch.arange(3), torch.tensor([len(r['coord'])
                                                                          for r in raw]))
    assert torch.equal(pb.batch[inv], origin_batch)
    # voxel labels come from a point of the voxel: 'first' sampling keeps the first point's label
    for b in range(3):
        rows = torch.nonzero(pb.batch == b).squeeze(1)
        local_inv = inv[origin_batch == b] - int(rows[0])
        seg = raw[b]['segment']
        first = [int(np.nonzero(local_inv.numpy() == r)[0][0]) for r in range(len(rows))]
        np.testing.assert_array_equal(pb['segment'][rows].numpy(), seg[first])


def test_multi_view_collate(data_root):
    pipeline = [
        dict(type='CenterShift', apply_z=True),
        dict(type='MultiViewGenerator', num_views=2, view_pipeline=[
            dict(type='RandomRotate', angle=(-1, 1), axis='z'),
            dict(type='SphereCrop', sample_rate=0.6, mode='random'),
            dict(type='GridSample', grid_size=0.2, sample='random'),
            dict(type='NormalizeColor'),
            dict(type='Collect', keys=('coord', 'grid_coord', 'segment', 'index'),
                 feat_keys=('color', 'normal')),
        ]),
    ]
    ds = ScanNetDataset(data_root, split='train', pipeline=pipeline)
    samples = [ds[0], ds[1]]
    inputs = point_collate(samples)['inputs']
    assert set(inputs) == {'view0', 'view1'}
    for i in range(2):
        pb = inputs[f'view{i}']
        assert isinstance(pb, PointBatch) and pb.batch_size == 2
        idx = pb[f'view{i}_index']
        assert idx.shape == (pb.num_points,)
        torch.testing.assert_close(pb['raw_coord'],
                                   torch.cat([torch.from_numpy(s[f'view{i}']['raw_coord'])
                                              for s in samples]))
        assert [m['name'] for m in pb.meta] == ['scene0000_00', 'scene0001_00']
        # indices are per sample: labels of the original scene points agree
        for b in range(2):
            rows = pb.batch == b
            seg = ds.get_data(b)['segment']
            np.testing.assert_array_equal(pb['segment'][rows].numpy(), seg[idx[rows].numpy()])


def test_registry_build_with_mmengine_scope(data_root):
    cfg = dict(type='ScanNetDataset', data_root=data_root, split='val', pipeline=VAL_PIPELINE)
    assert isinstance(DATASETS.build(cfg), ScanNetDataset)
    assert FUNCTIONS.get('point_collate') is point_collate
    # what mmengine's Runner does with default_scope='geo3d'
    with DefaultScope.overwrite_default_scope('geo3d'):
        ds = MM_DATASETS.build(dict(cfg))
        assert isinstance(ds, ScanNetDataset)
        fn = MM_FUNCTIONS.get('point_collate')
    loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=fn)
    assert isinstance(next(iter(loader))['inputs'], PointBatch)
