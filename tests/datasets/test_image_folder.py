"""ImageFolderDataset on tiny image folders written here: class folders and flat layouts, pixel
values, label order, resizing, pipelines, batching, and the errors for bad folders and files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from PIL import Image
from torch.utils.data import DataLoader

from geo3d.datasets.image_folder import ImageFolderDataset, ImageReadError
from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError


def _dataset(*args, **kwargs) -> ImageFolderDataset:
    """Unserialised: mmengine's serialisation runs gc.collect(), slow in a large test process."""
    return ImageFolderDataset(*args, serialize_data=False, **kwargs)


def _img(path, h=4, w=5, seed=0, mode='RGB'):
    """Write a random image; return its pixels as (3, H, W) uint8 (what the dataset must give)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == 'L':
        a = rng.integers(0, 256, (h, w), dtype=np.uint8)
        Image.fromarray(a, 'L').save(path)
        return np.repeat(a[None], 3, 0)
    if mode == 'RGBA':
        a = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        Image.fromarray(a, 'RGBA').save(path)
        return a[..., :3].transpose(2, 0, 1)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a, 'RGB').save(path)
    return a.transpose(2, 0, 1)


@pytest.fixture
def class_tree(tmp_path):
    root = tmp_path / 'imgs'
    px = {
        'cat/a.png': _img(root / 'cat/a.png', seed=1),
        'cat/sub/b.PNG': _img(root / 'cat/sub/b.PNG', 6, 3, seed=2, mode='L'),
        'dog/c.bmp': _img(root / 'dog/c.bmp', seed=3, mode='RGB'),
        'emu/d.png': _img(root / 'emu/d.png', 2, 2, seed=4, mode='RGBA'),
    }
    _img(root / 'dog/.hidden/x.png')             # hidden folder: skipped
    (root / 'dog/notes.txt').write_text('not an image')
    _img(root / '.cache/y.png')                   # hidden top-level folder: not a class
    return root, px


def test_class_folders(class_tree) -> None:
    root, px = class_tree
    ds = ImageFolderDataset(str(root))
    assert len(ds) == 4
    assert ds.metainfo['classes'] == ('cat', 'dog', 'emu') and ds.metainfo['num_classes'] == 3
    assert ds.metainfo['layout'] == 'class_folders'
    want_labels = {'cat/a.png': 0, 'cat/sub/b.PNG': 0, 'dog/c.bmp': 1, 'emu/d.png': 2}
    for i in range(len(ds)):
        r = ds[i]
        rel = r['img_path'][len(str(root)) + 1:]
        assert r['gt_label'] == want_labels[rel] and r['sample_idx'] == i
        assert r['img'].dtype == torch.uint8
        np.testing.assert_array_equal(r['img'].numpy(), px[rel])   # lossless files: exact
        assert r['ori_shape'] == px[rel].shape[1:]
    built = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root),
                                classes=['emu', 'cat']))
    assert built.metainfo['classes'] == ('emu', 'cat')
    assert sorted(built[i]['gt_label'] for i in range(len(built))) == [0, 1, 1]


def test_flat_folder_has_no_labels(tmp_path) -> None:
    root = tmp_path / 'flat'
    a = _img(root / 'b.jpg', seed=5)
    _img(root / 'a.tif', seed=6)
    _img(root / 'nested/c.webp', seed=7)
    ds = _dataset(str(root), layout='flat')
    assert [ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1] for i in range(3)] == [
        'a.tif', 'b.jpg', 'c.webp']
    assert all(ds[i]['gt_label'] == -1 for i in range(3))
    assert ds.metainfo['classes'] == ()
    jpg = ds[1]['img']
    assert jpg.shape == a.shape and (jpg.float() - torch.from_numpy(a).float()).abs().mean() < 60
    (tmp_path / 'only').mkdir()
    _img(tmp_path / 'only/x.png')
    assert _dataset(str(tmp_path / 'only')).metainfo['layout'] == 'flat'   # auto


def test_resize_pipeline_and_batching(class_tree) -> None:
    root, _ = class_tree
    seen = []

    def pack(results):
        seen.append(sorted(results))
        return {'inputs': results['img'], 'data_samples': {'gt_label': results['gt_label'],
                                                           'sample_idx': results['sample_idx']}}

    ds = _dataset(str(root), image_size=(8, 6), pipeline=[pack], max_samples=3)
    assert len(ds) == 3
    assert seen == [] and ds[0]['inputs'].shape == (3, 8, 6)
    assert seen[0] == ['gt_label', 'img', 'img_path', 'ori_shape', 'sample_idx']
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=default_collate)))
    assert batch['inputs'].shape == (3, 3, 8, 6)
    assert batch['data_samples']['sample_idx'].tolist() == [0, 1, 2]
    # a constant image stays constant through the antialiased resize
    (root / 'cat/flat.png').parent.mkdir(exist_ok=True)
    Image.new('RGB', (7, 5), (10, 200, 30)).save(root / 'cat/flat.png')
    ds = _dataset(str(root), image_size=3)
    r = next(ds[i] for i in range(len(ds)) if ds[i]['img_path'].endswith('flat.png'))
    assert r['img'].shape == (3, 3, 3) and r['ori_shape'] == (5, 7)
    assert r['img'][:, 1, 1].tolist() == [10, 200, 30]


def test_folder_errors(tmp_path, class_tree) -> None:
    with pytest.raises(DataNotFoundError, match='is not a directory'):
        _dataset(str(tmp_path / 'missing'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataNotFoundError, match='no image with an extension'):
        _dataset(str(tmp_path / 'empty'))
    (tmp_path / 'texts').mkdir()
    (tmp_path / 'texts/a.txt').write_text('x')
    with pytest.raises(DataNotFoundError, match='texts'):
        _dataset(str(tmp_path / 'texts'))
    root, _ = class_tree
    (root / 'empty_class').mkdir()
    with pytest.raises(DataNotFoundError, match="class folder '.*empty_class' holds no image"):
        _dataset(str(root))
    assert len(_dataset(str(root), classes=['cat', 'dog'])) == 3
    with pytest.raises(ValueError, match=r"classes \['cow'\] have no folder"):
        _dataset(str(root), classes=['cat', 'cow'])
    _img(root / 'top.png')
    with pytest.raises(ValueError, match="both images .*'top.png'.* and sub-folders"):
        _dataset(str(root), classes=['cat'])
    ds = _dataset(str(root), layout='class_folders', classes=['cat'])
    assert len(ds) == 2                                  # top-level images ignored
    assert len(_dataset(str(root), layout='flat')) == 5   # hidden ones skipped
    with pytest.raises(ValueError, match='layout must be'):
        _dataset(str(root), layout='tree')
    with pytest.raises(ValueError, match='image_size'):
        _dataset(str(root), layout='flat', image_size=(4, 0))


def test_unreadable_image_is_named(tmp_path) -> None:
    root = tmp_path / 'bad'
    _img(root / 'good.png')
    (root / 'broken.png').write_bytes(b'this is not a png')
    full = root / 'truncated.png'
    _img(full, 32, 32, seed=9)
    full.write_bytes(full.read_bytes()[:60])
    ds = _dataset(str(root))                   # listing works; decoding fails
    names = [ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1] for i in range(len(ds))]
    assert names == ['broken.png', 'good.png', 'truncated.png']
    assert ds[1]['img'].shape == (3, 4, 5)
    with pytest.raises(ImageReadError, match=r"cannot read image '.*broken\.png' \(sample 0\)"):
        ds[0]
    with pytest.raises(ImageReadError, match=r'truncated\.png'):
        ds[2]
