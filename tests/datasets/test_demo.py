"""Tests for the procedural demo data in the raw ScanNet v2 layout (geo3d.datasets.demo)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from geo3d.converters.scannet import (convert, derive_labels, nyu40_to_scannet20, read_aggregation,
                                      read_axis_alignment, read_label_map, read_segs)
from geo3d.datasets.demo import (NYU40_PALETTE, TSV_COLUMNS, TSV_ROWS, make_demo_scannet,
                                 make_demo_scene, write_ply_mesh)
from geo3d.datasets.scannet_constants import (CLASS_LABELS_20, CLASS_LABELS_200,
                                              VALID_CLASS_IDS_20, VALID_CLASS_IDS_200)

POINTS = 3000
MESH_HEADER = ('ply\nformat binary_little_endian 1.0\ncomment VCGLIB generated\n'
               'element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n'
               'property uchar red\nproperty uchar green\nproperty uchar blue\n'
               'property uchar alpha\nelement face {f}\nproperty list uchar int vertex_indices\n'
               'end_header\n')
LABELS_HEADER = MESH_HEADER.replace('VCGLIB', 'MLIB').replace(
    'property uchar alpha\n', 'property uchar alpha\nproperty ushort label\n')


@pytest.fixture(scope='module')
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default 12/4/1 split at a small vertex count, generated once."""
    root = tmp_path_factory.mktemp('demo_raw')
    ids = make_demo_scannet(root, seed=0, points_per_scene=POINTS)
    assert len(ids) == 17
    return root


@pytest.fixture(scope='module')
def converted(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('demo_out')
    rep = convert(demo, out, progress=False, verbose=False)
    assert rep.failed == [] and rep.converted == 17
    return out


def _split(root: Path, split: str) -> list[str]:
    return (root / f'scannetv2_{split}.txt').read_text().split()


def _header(path: Path) -> str:
    data = path.read_bytes()
    return data[:data.index(b'end_header\n') + len(b'end_header\n')].decode('ascii')


def test_layout(demo: Path) -> None:
    train, val, test = (_split(demo, s) for s in ('train', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (12, 4, 1)
    assert test == ['scene0707_00'] and train[0] == 'scene0000_00'
    assert (demo / 'scannetv2_train.txt').read_text().endswith('scene0011_00\n')
    for sid in train + val:
        d = demo / 'scans' / sid
        assert sorted(p.name for p in d.iterdir()) == sorted([
            f'{sid}_vh_clean_2.ply', f'{sid}_vh_clean_2.labels.ply',
            f'{sid}_vh_clean_2.0.010000.segs.json', f'{sid}.aggregation.json', f'{sid}.txt'])
    d = demo / 'scans_test' / test[0]
    assert sorted(p.name for p in d.iterdir()) == sorted([f'{test[0]}_vh_clean_2.ply',
                                                          f'{test[0]}.txt'])
    assert 'axisAlignment' not in (d / f'{test[0]}.txt').read_text()


def test_ply_headers_exact(demo: Path) -> None:
    sid = _split(demo, 'train')[0]
    d = demo / 'scans' / sid
    mesh = PlyData.read(str(d / f'{sid}_vh_clean_2.ply'))
    n, f = mesh['vertex'].count, mesh['face'].count
    assert _header(d / f'{sid}_vh_clean_2.ply') == MESH_HEADER.format(n=n, f=f)
    assert _header(d / f'{sid}_vh_clean_2.labels.ply') == LABELS_HEADER.format(n=n, f=f)
    v = mesh['vertex'].data
    assert v.dtype.names == ('x', 'y', 'z', 'red', 'green', 'blue', 'alpha')
    assert [v.dtype[k].str for k in v.dtype.names] == ['<f4'] * 3 + ['|u1'] * 4
    assert (v['alpha'] == 255).all()
    faces = np.stack(mesh['face'].data['vertex_indices'])
    assert faces.shape == (f, 3) and faces.min() >= 0 and faces.max() < n
    # positional access, as the official ScanNet200 preprocessing does
    cols = np.stack([v[k] for k in v.dtype.names], 1)
    assert np.array_equal(cols[:, :3], np.stack([v['x'], v['y'], v['z']], 1))
    assert abs(n - POINTS) < 0.15 * POINTS


def test_fast_writer_matches_plyfile(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    coord = rng.normal(size=(20, 3)).astype(np.float32)
    color = rng.integers(0, 256, (20, 3)).astype(np.uint8)
    faces = rng.integers(0, 20, (15, 3))
    label = rng.integers(0, 41, 20)
    write_ply_mesh(tmp_path / 'fast.ply', coord, color, faces, label=label,
                   comment='MLIB generated')
    vert = np.empty(20, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'),
                               ('green', 'u1'), ('blue', 'u1'), ('alpha', 'u1'), ('label', '<u2')])
    for k, name in enumerate('xyz'):
        vert[name] = coord[:, k]
    for k, name in enumerate(('red', 'green', 'blue')):
        vert[name] = color[:, k]
    vert['alpha'], vert['label'] = 255, label
    face = np.empty(15, dtype=[('vertex_indices', '<i4', (3,))])
    face['vertex_indices'] = faces
    PlyData([PlyElement.describe(vert, 'vertex'),
             PlyElement.describe(face, 'face', len_types={'vertex_indices': 'u1'})],
            text=False, byte_order='<', comments=['MLIB generated']).write(
                str(tmp_path / 'ref.ply'))
    assert (tmp_path / 'fast.ply').read_bytes() == (tmp_path / 'ref.ply').read_bytes()


def test_json_txt_tsv_formats(demo: Path) -> None:
    sid = _split(demo, 'val')[0]
    d = demo / 'scans' / sid
    segs = json.loads((d / f'{sid}_vh_clean_2.0.010000.segs.json').read_text())
    assert set(segs) == {'params', 'sceneId', 'segIndices'}
    assert all(isinstance(v, str) for v in segs['params'].values())
    agg = json.loads((d / f'{sid}.aggregation.json').read_text())
    assert set(agg) == {'sceneId', 'appId', 'segGroups', 'segmentsFile'}
    for k, g in enumerate(agg['segGroups']):
        assert list(g) == ['id', 'objectId', 'segments', 'label'] and g['id'] == k
    seg_ids = np.unique(segs['segIndices'])
    assert seg_ids.min() >= 0 and seg_ids.max() > len(seg_ids)  # arbitrary, not 0..K-1
    lines = (d / f'{sid}.txt').read_text().splitlines()
    axis = lines[0]
    assert axis.startswith('axisAlignment = ') and axis.count('  ') == 0
    assert len(axis[len('axisAlignment = '):].split(' ')) == 16
    keys = [ln.split(' = ')[0] for ln in lines]
    assert {'colorHeight', 'fx_color', 'numColorFrames', 'sceneType'} <= set(keys)
    a = read_axis_alignment(d / f'{sid}.txt', sid)
    assert a is not None and np.allclose(a[3], [0, 0, 0, 1])
    assert np.allclose(a[:3, :3] @ a[:3, :3].T, np.eye(3), atol=1e-5) and np.isclose(a[2, 2], 1)

    text = (demo / 'scannetv2-labels.combined.tsv').read_text()
    rows = list(csv.DictReader(io.StringIO(text), delimiter='\t'))
    assert tuple(rows[0].keys()) == TSV_COLUMNS and len(TSV_COLUMNS) == 17
    for row in rows:
        name = row['raw_category']
        if name in CLASS_LABELS_200:
            assert int(row['id']) == VALID_CLASS_IDS_200[CLASS_LABELS_200.index(name)]
    lm = read_label_map(demo / 'scannetv2-labels.combined.tsv')
    assert lm['wall'] == (1, 1) and lm['floor'] == (3, 2) and lm['chair'] == (2, 5)
    assert lm['table'] == (4, 7) and lm['couch'] == (6, 6) and lm['trash can'] == (56, 39)
    assert lm['box'][1] not in VALID_CLASS_IDS_20 and lm['ceiling'][1] not in VALID_CLASS_IDS_20


def test_tsv_rows_real_nyu40_classes() -> None:
    """The nyu40 id of every row names the right ScanNet20 class."""
    expect = {'wall': 'wall', 'floor': 'floor', 'chair': 'chair', 'office chair': 'chair',
              'armchair': 'chair', 'couch': 'sofa', 'table': 'table', 'coffee table': 'table',
              'end table': 'table', 'desk': 'desk', 'bed': 'bed', 'door': 'door',
              'window': 'window', 'picture': 'picture', 'curtain': 'curtain',
              'cabinet': 'cabinet', 'kitchen cabinet': 'cabinet', 'bathroom vanity': 'cabinet',
              'bookshelf': 'bookshelf', 'counter': 'counter', 'kitchen counter': 'counter',
              'refrigerator': 'refrigerator', 'toilet': 'toilet', 'sink': 'sink',
              'bathtub': 'bathtub', 'shower curtain': 'shower curtain',
              'trash can': 'otherfurniture', 'radiator': 'otherfurniture',
              'ottoman': 'otherfurniture'}
    for raw, cls in expect.items():
        nyu = int(TSV_ROWS[raw][4])
        assert CLASS_LABELS_20[VALID_CLASS_IDS_20.index(nyu)] == cls, raw
    for raw in ('box', 'ceiling', 'pillow', 'lamp', 'tv', 'nightstand', 'book', 'object'):
        assert int(TSV_ROWS[raw][4]) not in VALID_CLASS_IDS_20, raw


def test_determinism(tmp_path: Path) -> None:
    for name in ('a', 'b'):
        make_demo_scannet(tmp_path / name, num_train=1, num_val=0, num_test=1, seed=5,
                          points_per_scene=1500)
    make_demo_scannet(tmp_path / 'c', num_train=1, num_val=0, num_test=1, seed=6,
                      points_per_scene=1500)
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*')
                   if p.is_file())
    assert len(files) == 11  # tsv + 3 split files + 5 train files + 2 test files
    for rel in files:
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel
    ply = Path('scans/scene0000_00/scene0000_00_vh_clean_2.ply')
    assert (tmp_path / 'a' / ply).read_bytes() != (tmp_path / 'c' / ply).read_bytes()


def test_label_statistics(converted: Path, demo: Path) -> None:
    seen: set[int] = set()
    for sid in _split(demo, 'train') + _split(demo, 'val'):
        s20 = np.load(converted / 'scenes' / sid / 'segment20.npy')
        present = set(np.unique(s20).tolist())
        if sid in _split(demo, 'train'):
            assert {0, 1} <= present, sid  # wall and floor
        seen |= present - {-1}
        frac_ignore = float(np.mean(s20 == -1))
        assert 0.0 < frac_ignore < 0.45, (sid, frac_ignore)  # clutter + unannotated
        inst = np.load(converted / 'scenes' / sid / 'instance.npy')
        assert inst.max() >= 5
    assert len(seen) >= 12, sorted(CLASS_LABELS_20[k] for k in seen)
    train20 = json.loads((converted / 'meta.json').read_text())['splits']['train']
    assert sum(c > 0 for c in train20['class_points20']) >= 12


def test_labels_ply_agrees_with_segs_and_aggregation(demo: Path) -> None:
    lm = read_label_map(demo / 'scannetv2-labels.combined.tsv')
    for sid in _split(demo, 'train')[:4] + _split(demo, 'val')[:1]:
        d = demo / 'scans' / sid
        segs = read_segs(d / f'{sid}_vh_clean_2.0.010000.segs.json', sid)
        groups = read_aggregation(d / f'{sid}.aggregation.json', sid)
        s20, _, _ = derive_labels(segs, groups, lm, sid)
        lab = PlyData.read(str(d / f'{sid}_vh_clean_2.labels.ply'))['vertex'].data
        assert np.array_equal(nyu40_to_scannet20(lab['label']), s20)
        col = np.stack([lab['red'], lab['green'], lab['blue']], 1)
        assert np.array_equal(col, NYU40_PALETTE[lab['label']])
        # every vertex of a segment has the same label (groups are unions of segments)
        assert (np.unique(np.c_[segs, lab['label']], axis=0).shape[0]
                == np.unique(segs).shape[0])


def test_converter_on_demo(converted: Path, demo: Path) -> None:
    meta = json.loads((converted / 'meta.json').read_text())
    assert meta['num_scenes'] == 17
    assert all(s['label_mismatch'] in (0.0, None) for s in meta['scenes'].values())
    assert not (converted / 'failed.txt').exists()
    sid = _split(demo, 'train')[0]
    coord = np.load(converted / 'scenes' / sid / 'coord.npy')
    a = np.load(converted / 'scenes' / sid / 'axis_align_matrix.npy').astype(np.float64)
    aligned = (a @ np.c_[coord, np.ones(len(coord))].T).T[:, :3]
    s20 = np.load(converted / 'scenes' / sid / 'segment20.npy')
    # in the aligned frame the room's floor is at z = 0 and its walls are axis-parallel
    floor = aligned[s20 == 1]
    assert abs(np.median(floor[:, 2])) < 0.02 and floor[:, 2].std() < 0.02
    assert aligned[:, 0].min() > -0.3 and aligned[:, 1].min() > -0.3  # windows are recessed
    # ... whereas the raw frame is rotated + translated
    assert not np.allclose(a, np.eye(4), atol=1e-3)
    # floor normals point up (aligned frame: z row of the rotation applied to raw normals)
    normal = np.load(converted / 'scenes' / sid / 'normal.npy')
    nz = normal[s20 == 1] @ a[2, :3]
    assert np.median(nz) > 0.99


def test_vertex_budget_and_speed() -> None:
    import time
    t0 = time.perf_counter()
    scene = make_demo_scene([0, 1], points=30000, kind='living')
    dt = time.perf_counter() - t0
    assert 0.8 * 30000 < len(scene.coord) < 1.25 * 30000
    assert dt < 5.0  # ~0.5 s on one core; generous for busy CI machines
    assert scene.faces.dtype == np.int32 and scene.faces.max() < len(scene.coord)
    used = np.zeros(len(scene.coord), bool)
    used[scene.faces.ravel()] = True
    assert used.mean() > 0.95  # hardly any isolated vertex after hole cutting
    # over-segmentation: segment id = smallest vertex index of the segment
    for s in np.unique(scene.seg_indices)[:50]:
        assert np.flatnonzero(scene.seg_indices == s).min() == s
