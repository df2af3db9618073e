"""Tests for the ScanNet v2 converter (geo3d.converters.scannet)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import geo3d.converters.scannet as sc
from geo3d.converters.scannet import (SceneError, compute_vertex_normals, convert, derive_labels,
                                      main, read_label_map)
from geo3d.datasets.demo import TSV_COLUMNS, make_demo_scannet, write_ply_mesh

REPO = Path(__file__).resolve().parents[2]
DEAD_PID = 2 ** 22 + 4321  # above Linux pid_max: never a live process

# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 train + 1 val + 1 test small demo scenes, generated once per module."""
    root = tmp_path_factory.mktemp('raw')
    make_demo_scannet(root, num_train=3, num_val=1, num_test=1, seed=3, points_per_scene=1500)
    return root


@pytest.fixture
def root(demo_root: Path, tmp_path: Path) -> Path:
    """A private copy of the demo root that a test may corrupt."""
    dst = tmp_path / 'raw'
    shutil.copytree(demo_root, dst)
    return dst


def _ids(root: Path, split: str) -> list[str]:
    return (root / f'scannetv2_{split}.txt').read_text().split()


def _scene_dir(root: Path, scene: str) -> Path:
    return root / ('scans_test' if (root / 'scans_test' / scene).is_dir() else 'scans') / scene


def _run_cli(root: Path, out: Path, *extra: str) -> int:
    return main(['--root', str(root), '--out', str(out), '--no-progress', *extra])


def _assert_one_failure(root: Path, out: Path, scene: str, file: Path, *reason_parts: str) -> None:
    """CLI exits 1, the one failure names scene, file and reason, the others finished."""
    assert _run_cli(root, out) == 1
    failed = (out / 'failed.txt').read_text().splitlines()
    assert failed == [line for line in failed if line.startswith(scene)] and len(failed) == 1
    line = failed[0]
    assert line.startswith(f'{scene}: {file}: '), line
    for part in reason_parts:
        assert part in line, (part, line)
    assert not (out / 'scenes' / scene).exists()
    every = [i for s in ('train', 'val', 'test') for i in _ids(root, s)]
    done = sorted(p.name for p in (out / 'scenes').iterdir())
    assert done == sorted(i for i in every if i != scene)  # no temp dirs left either
    listed = [i for s in ('train', 'val', 'test') for i in (out / 'splits' / f'{s}.txt')
              .read_text().split()]
    assert scene not in listed and sorted(listed) == done


# ------------------------------------------------------------------------------------------------
# hand-built fixture: labels computed by hand

# 12 vertices on a 4 x 3 planar grid, segment ids arbitrary and non-contiguous
_SEGS = [7, 7, 30, 2, 99, 30, 7, 1000, 2, 1000, 99, 30]
# groups: id 0 wall [7]; id 1 trash can [30]; id 2 box [2]; id 5 mystery shelf [1000]
_GROUPS = [{'id': 0, 'objectId': 0, 'segments': [7], 'label': 'wall'},
           {'id': 1, 'objectId': 1, 'segments': [30], 'label': 'trash can'},
           {'id': 2, 'objectId': 2, 'segments': [2], 'label': 'box'},
           {'id': 5, 'objectId': 5, 'segments': [1000], 'label': 'mystery shelf'}]
# wall: nyu40 1 -> 20-index 0, tsv id 1 -> 200-index 0
# trash can: nyu40 39 -> 19 (otherfurniture), tsv id 56 -> 48
# box: nyu40 29 -> -1 (not a ScanNet20 class), tsv id 26 -> 22
# mystery shelf (custom row): nyu40 10 -> 9 (bookshelf), tsv id 5000 -> -1 (not in ScanNet200)
# segment 99: in no group -> -1, -1, instance -1
_EXP20 = [0, 0, 19, -1, -1, 19, 0, 9, -1, 9, -1, 19]
_EXP200 = [0, 0, 48, 22, -1, 48, 0, -1, 22, -1, -1, 48]
_EXPINST = [0, 0, 1, 2, -1, 1, 0, 5, 2, 5, -1, 1]
_NYU40 = [1, 1, 39, 29, 0, 39, 1, 10, 29, 10, 0, 39]
_TSV_ROWS = [
    ['1', 'wall', 'wall', '8277', '1', '12', 'wall', 'wall', 'Wall', '', '', '', '', 'n04546855',
     'wall.n.01', 'wall', '1'],
    ['56', 'trash can', 'trash can', '1090', '39', '6', 'garbage bin', 'otherfurniture',
     'Furniture', '', '', 'trash_bin', '2747177', 'n02747177', 'ashcan.n.01', 'objects', '39'],
    ['26', 'box', 'box', '775', '29', '7', 'box', 'box', 'Objects', '', '', '', '', 'n02883344',
     'box.n.01', 'objects', '39'],
    ['5000', 'mystery shelf', 'shelf', '1', '10', '6', 'bookshelf', 'bookshelf'],  # short row
]


def _tsv_text(newline: str = '\n') -> str:
    lines = ['\t'.join(TSV_COLUMNS)] + ['\t'.join(r) for r in _TSV_ROWS]
    return newline.join(lines) + newline


def _grid_mesh() -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(4.0), np.arange(3.0), indexing='ij')
    coord = np.stack([xs.ravel(), ys.ravel(), np.zeros(12)], 1)  # vertex k = (k // 3, k % 3)
    faces = []
    for i in range(3):
        for j in range(2):
            a, b, c, d = i * 3 + j, (i + 1) * 3 + j, (i + 1) * 3 + j + 1, i * 3 + j + 1
            faces += [(a, b, c), (a, c, d)]
    return coord, np.array(faces)


def _write_hand_scene(root: Path, scene: str = 'scene0000_00', labels_ply: list[int] | None = None,
                      axis: str | None = '1 0 0 0.5 0 1 0 0 0 0 1 0 0 0 0 1') -> None:
    d = root / 'scans' / scene
    d.mkdir(parents=True)
    coord, faces = _grid_mesh()
    color = np.arange(36, dtype=np.uint8).reshape(12, 3)
    write_ply_mesh(d / f'{scene}_vh_clean_2.ply', coord, color, faces)
    write_ply_mesh(d / f'{scene}_vh_clean_2.labels.ply', coord, color, faces,
                   label=np.array(_NYU40 if labels_ply is None else labels_ply),
                   comment='MLIB generated')
    (d / f'{scene}_vh_clean_2.0.010000.segs.json').write_text(
        json.dumps({'params': {'kThresh': '0.0001'}, 'sceneId': scene, 'segIndices': _SEGS}))
    (d / f'{scene}.aggregation.json').write_text(json.dumps(
        {'sceneId': f'scannet.{scene}', 'appId': 'Aggregator.v2', 'segGroups': _GROUPS}))
    (d / f'{scene}.txt').write_text((f'axisAlignment = {axis}\n' if axis else '')
                                    + 'sceneType = Office\n')


@pytest.fixture
def hand_root(tmp_path: Path) -> Path:
    root = tmp_path / 'hand'
    _write_hand_scene(root)
    (root / 'scannetv2-labels.combined.tsv').write_text(_tsv_text())
    (root / 'scannetv2_train.txt').write_text('scene0000_00\n')
    (root / 'scannetv2_val.txt').write_text('')
    (root / 'scannetv2_test.txt').write_text('')
    return root


def test_labels_hand_built(hand_root: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    rep = convert(hand_root, out, progress=False, verbose=False)
    assert (rep.converted, rep.skipped, rep.failed, rep.points) == (1, 0, [], 12)
    d = out / 'scenes' / 'scene0000_00'
    assert sorted(p.name for p in d.iterdir()) == sorted(f'{n}.npy' for n in sc.ARRAY_FILES)
    seg20, seg200, inst = (np.load(d / f'{n}.npy') for n in ('segment20', 'segment200',
                                                               'instance'))
    assert seg20.dtype == seg200.dtype == inst.dtype == np.int16
    assert seg20.tolist() == _EXP20
    assert seg200.tolist() == _EXP200
    assert inst.tolist() == _EXPINST
    coord, color, normal = (np.load(d / f'{n}.npy') for n in ('coord', 'color', 'normal'))
    assert coord.dtype == np.float32 and coord.shape == (12, 3)
    assert np.array_equal(coord, _grid_mesh()[0].astype(np.float32))  # raw, not aligned
    assert color.dtype == np.uint8 and color.tolist() == np.arange(36).reshape(12, 3).tolist()
    assert normal.dtype == np.float32 and np.allclose(normal, [0, 0, 1])
    axis = np.load(d / 'axis_align_matrix.npy')
    assert axis.dtype == np.float32 and axis.shape == (4, 4)
    assert np.array_equal(axis, np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0],
                                          [0, 0, 0, 1]], np.float32))
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['scenes']['scene0000_00']['label_mismatch'] == 0.0
    assert meta['converter_version'] == sc.CONVERTER_VERSION
    assert meta['label_sets']['scannet20']['class_names'][19] == 'otherfurniture'
    assert meta['splits']['train']['class_points20'][0] == 3
    assert not (out / 'failed.txt').exists()


def test_labels_ply_disagreement_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / 'hand'
    bad = list(_NYU40)
    bad[0], bad[4], bad[7] = 5, 1, 50  # chair instead of wall; wall instead of none; 50 = bug id
    _write_hand_scene(root, labels_ply=bad, axis=None)
    (root / 'scannetv2-labels.combined.tsv').write_text(_tsv_text())
    for s, ids in (('train', 'scene0000_00\n'), ('val', ''), ('test', '')):
        (root / f'scannetv2_{s}.txt').write_text(ids)
    rep = convert(root, tmp_path / 'out', progress=False, verbose=False)
    assert rep.converted == 1 and not rep.failed
    meta = json.loads((tmp_path / 'out' / 'meta.json').read_text())['scenes']['scene0000_00']
    assert meta['label_mismatch'] == pytest.approx(3 / 12)
    # missing axisAlignment in a train scene: identity + a warning, not an error
    assert any('axisAlignment' in w for w in meta['warnings'])
    assert any('axisAlignment' in w for w in rep.warnings)
    axis = np.load(tmp_path / 'out' / 'scenes' / 'scene0000_00' / 'axis_align_matrix.npy')
    assert np.array_equal(axis, np.eye(4, dtype=np.float32))


def test_derive_labels_overlapping_segments_later_group_wins() -> None:
    lm = {'wall': (1, 1), 'chair': (2, 5)}
    groups = [{'id': 0, 'segments': [4, 8], 'label': 'wall'},
              {'id': 1, 'segments': [8], 'label': 'chair'}]
    s20, s200, inst = derive_labels(np.array([8, 4, 3, 8]), groups, lm)
    assert s20.tolist() == [4, 0, -1, 4]
    assert s200.tolist() == [1, 0, -1, 1]
    assert inst.tolist() == [1, 0, -1, 1]


def test_tsv_crcrlf_and_short_rows_parse_identically(tmp_path: Path) -> None:
    a, b, c = tmp_path / 'lf.tsv', tmp_path / 'crcrlf.tsv', tmp_path / 'crlf_nofinal.tsv'
    a.write_bytes(_tsv_text('\n').encode())
    b.write_bytes(_tsv_text('\r\r\n').encode())
    c.write_bytes(_tsv_text('\r\n').rstrip('\r\n').encode())
    ma, mb, mc = read_label_map(a), read_label_map(b), read_label_map(c)
    assert ma == mb == mc
    assert ma == {'wall': (1, 1), 'trash can': (56, 39), 'box': (26, 29),
                  'mystery shelf': (5000, 10)}
    assert all('\r' not in k for k in mb)


def test_tsv_crcrlf_gives_identical_outputs(hand_root: Path, tmp_path: Path) -> None:
    convert(hand_root, tmp_path / 'a', progress=False, verbose=False)
    (hand_root / 'scannetv2-labels.combined.tsv').write_bytes(_tsv_text('\r\r\n').encode())
    convert(hand_root, tmp_path / 'b', progress=False, verbose=False)
    for name in sc.ARRAY_FILES:
        f = f'scenes/scene0000_00/{name}.npy'
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()


# ------------------------------------------------------------------------------------------------
# normals


def _normals_reference(coord: np.ndarray, faces: np.ndarray) -> np.ndarray:
    acc = np.zeros((len(coord), 3))
    for f in faces:
        n = np.cross(coord[f[1]] - coord[f[0]], coord[f[2]] - coord[f[0]])
        for v in f:
            acc[v] += n
    out = np.tile([0.0, 0.0, 1.0], (len(coord), 1))
    for k in range(len(coord)):
        ln = np.linalg.norm(acc[k])
        if ln > 0:
            out[k] = acc[k] / ln
    return out


def test_normals_match_loop_reference() -> None:
    rng = np.random.default_rng(0)
    coord = rng.normal(size=(60, 3))
    faces = np.array([rng.choice(59, 3, replace=False) for _ in range(150)])  # vertex 59 isolated
    got = compute_vertex_normals(coord, faces)
    assert got.dtype == np.float32 and got.shape == (60, 3)
    np.testing.assert_allclose(got, _normals_reference(coord, faces), atol=1e-5)
    assert got[59].tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_normals_flat_grid() -> None:
    coord, faces = _grid_mesh()
    assert np.allclose(compute_vertex_normals(coord, faces), [0, 0, 1])
    assert np.allclose(compute_vertex_normals(coord, faces[:, ::-1]), [0, 0, -1])


def test_normals_closed_surfaces_point_outward() -> None:
    # cube: 8 corners, 12 outward-wound triangles. A corner with equal weight from its 3 faces
    # gets exactly the diagonal; in general, every normal points outward.
    c = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, cc, d in quads for t in ((a, b, cc), (a, cc, d))])
    n = compute_vertex_normals(c, faces)
    diag = (c - 0.5) / np.linalg.norm(c - 0.5, axis=1, keepdims=True)
    assert (np.sum(n * diag, axis=1) > 0.9).all()
    np.testing.assert_allclose(n[0], diag[0], atol=1e-6)  # 0 is in both triangles of its faces
    # reversing the winding flips every normal
    np.testing.assert_allclose(compute_vertex_normals(c, faces[:, ::-1]), -n, atol=1e-6)
    # UV sphere: normals ~ radial
    th, ph = np.meshgrid(np.linspace(0.2, np.pi - 0.2, 12), np.linspace(0, 2 * np.pi, 24,
                                                                       endpoint=False),
                         indexing='ij')
    pts = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1)
    pts = pts.reshape(-1, 3)
    fs = []
    for i in range(11):
        for j in range(24):
            a, b = i * 24 + j, i * 24 + (j + 1) % 24
            fs += [(a, a + 24, b + 24), (a, b + 24, b)]
    n = compute_vertex_normals(pts, np.array(fs))
    assert (np.sum(n * pts, axis=1) > 0.95).all()


# ------------------------------------------------------------------------------------------------
# whole-dataset conversion on demo scenes


def test_convert_demo_outputs(root: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    assert _run_cli(root, out) == 0
    for split in ('train', 'val', 'test'):
        assert (out / 'splits' / f'{split}.txt').read_text().split() == _ids(root, split)
    test_id = _ids(root, 'test')[0]
    d = out / 'scenes' / test_id
    n = len(np.load(d / 'coord.npy'))
    for name in ('segment20', 'segment200', 'instance'):
        a = np.load(d / f'{name}.npy')
        assert a.shape == (n,) and a.dtype == np.int16 and (a == -1).all()
    assert np.array_equal(np.load(d / 'axis_align_matrix.npy'), np.eye(4, dtype=np.float32))
    train = out / 'scenes' / _ids(root, 'train')[0]
    s20 = np.load(train / 'segment20.npy')
    assert s20.min() >= -1 and s20.max() <= 19 and len(np.unique(s20)) > 3
    normal = np.load(train / 'normal.npy')
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, atol=1e-4)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['num_scenes'] == 5 and meta['splits']['train']['scenes'] == 3
    assert all(s['label_mismatch'] in (0.0, None) for s in meta['scenes'].values())


def test_split_file_order_and_split_dir(root: Path, tmp_path: Path) -> None:
    ids = _ids(root, 'train')[::-1]
    sd = tmp_path / 'splits_elsewhere'
    sd.mkdir()
    for s in ('train', 'val', 'test'):
        shutil.move(str(root / f'scannetv2_{s}.txt'), sd / f'scannetv2_{s}.txt')
    (sd / 'scannetv2_train.txt').write_text(''.join(f'{i}\n' for i in ids))
    out = tmp_path / 'out'
    assert _run_cli(root, out, '--split-dir', str(sd)) == 0
    assert (out / 'splits' / 'train.txt').read_text().split() == ids
    # ROOT/splits/ is accepted too
    shutil.move(str(sd), root / 'splits')
    assert _run_cli(root, tmp_path / 'out2') == 0


def test_parallel_equals_serial(root: Path, tmp_path: Path) -> None:
    a = convert(root, tmp_path / 'a', workers=1, progress=False, verbose=False)
    b = convert(root, tmp_path / 'b', workers=2, progress=False, verbose=False)
    assert a.converted == b.converted == 5 and a.points == b.points
    for f in sorted((tmp_path / 'a' / 'scenes').rglob('*.npy')):
        rel = f.relative_to(tmp_path / 'a')
        assert f.read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel


def test_summary_line(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep = convert(root, tmp_path / 'out', progress=False)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith('scannet: 5 converted, 0 skipped (done before), 0 failed, ')
    assert f'{rep.points:,} points in ' in line and 'scenes/s' in line and 'points/s)' in line


# ------------------------------------------------------------------------------------------------
# bad inputs: each reports scene + file + reason, the other scenes finish, exit code 1


def test_truncated_ply(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[1]
    ply = _scene_dir(root, scene) / f'{scene}_vh_clean_2.ply'
    data = ply.read_bytes()
    ply.write_bytes(data[:len(data) // 2])
    _assert_one_failure(root, tmp_path / 'out', scene, ply, 'truncated PLY')


def test_corrupt_ply_header(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[0]
    ply = _scene_dir(root, scene) / f'{scene}_vh_clean_2.ply'
    ply.write_bytes(b'not a ply file at all\n' + ply.read_bytes()[:100])
    _assert_one_failure(root, tmp_path / 'out', scene, ply, 'corrupt or truncated PLY')


def test_missing_json(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'val')[0]
    agg = _scene_dir(root, scene) / f'{scene}.aggregation.json'
    agg.unlink()
    _assert_one_failure(root, tmp_path / 'out', scene, agg, 'missing file')


def test_invalid_json(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[2]
    segs = _scene_dir(root, scene) / f'{scene}_vh_clean_2.0.010000.segs.json'
    segs.write_text(segs.read_text()[:-10])
    _assert_one_failure(root, tmp_path / 'out', scene, segs, 'invalid JSON')


def test_label_absent_from_tsv(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[0]
    agg = _scene_dir(root, scene) / f'{scene}.aggregation.json'
    obj = json.loads(agg.read_text())
    obj['segGroups'][3]['label'] = 'flying saucer'
    agg.write_text(json.dumps(obj))
    _assert_one_failure(root, tmp_path / 'out', scene, agg, "'flying saucer'",
                        'not a raw_category')


def test_vertex_count_mismatch_segs(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[1]
    segs = _scene_dir(root, scene) / f'{scene}_vh_clean_2.0.010000.segs.json'
    obj = json.loads(segs.read_text())
    n = len(obj['segIndices'])
    obj['segIndices'] = obj['segIndices'][:-2]
    segs.write_text(json.dumps(obj))
    _assert_one_failure(root, tmp_path / 'out', scene, segs, 'vertex count mismatch',
                        f'{n - 2} entries', f'{n} vertices')


def test_vertex_count_mismatch_labels_ply(root: Path, tmp_path: Path) -> None:
    from plyfile import PlyData
    scene = _ids(root, 'val')[0]
    lab = _scene_dir(root, scene) / f'{scene}_vh_clean_2.labels.ply'
    v = PlyData.read(str(lab))['vertex'].data
    n = len(v)
    coord = np.stack([v['x'], v['y'], v['z']], 1)[:-5]
    color = np.stack([v['red'], v['green'], v['blue']], 1)[:-5]
    write_ply_mesh(lab, coord, color, np.array([[0, 1, 2]]), label=v['label'][:-5],
                   comment='MLIB generated')
    _assert_one_failure(root, tmp_path / 'out', scene, lab, 'vertex count mismatch',
                        f'labels.ply has {n - 5} vertices', f'has {n}')


def test_missing_scene_directory(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'test')[0]
    shutil.rmtree(root / 'scans_test' / scene)
    _assert_one_failure(root, tmp_path / 'out', scene, root / 'scans_test' / scene,
                        'missing scene directory')


def test_failures_file_removed_when_fixed(root: Path, tmp_path: Path) -> None:
    scene = _ids(root, 'train')[0]
    agg = _scene_dir(root, scene) / f'{scene}.aggregation.json'
    backup = agg.read_bytes()
    agg.unlink()
    out = tmp_path / 'out'
    rep = convert(root, out, progress=False, verbose=False)
    assert rep.failed == [(scene, str(agg), 'missing file')] and rep.converted == 4
    assert (out / 'failed.txt').exists()
    agg.write_bytes(backup)
    rep = convert(root, out, progress=False, verbose=False)
    assert (rep.converted, rep.skipped, rep.failed) == (1, 4, [])
    assert not (out / 'failed.txt').exists()
    assert scene in (out / 'splits' / 'train.txt').read_text().split()


# ------------------------------------------------------------------------------------------------
# bad global input: exit code 2


def test_missing_split_files(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    (root / 'scannetv2_val.txt').unlink()
    assert _run_cli(root, tmp_path / 'out') == 2
    err = capsys.readouterr().err
    assert 'scannetv2_val.txt' in err and 'Tasks/Benchmark' in err
    assert not (tmp_path / 'out' / 'scenes').exists()  # failed immediately


def test_bad_arguments(tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(tmp_path / 'nowhere', tmp_path / 'out') == 2
    assert 'not a directory' in capsys.readouterr().err
    (root / 'scannetv2-labels.combined.tsv').unlink()
    assert _run_cli(root, tmp_path / 'out') == 2
    with pytest.raises(SystemExit) as e:
        main(['--out', str(tmp_path)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(['--root', str(root), '--out', str(tmp_path), '--workers', '0'])
    assert e.value.code == 2
    assert _run_cli(root, tmp_path / 'out', '--splits', 'train,bogus') == 2


def test_cli_script_from_repo_root(hand_root: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    res = subprocess.run([sys.executable, 'data_converters/scannet.py', '--root', str(hand_root),
                          '--out', str(out), '--no-progress'], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'scannet: 1 converted' in res.stdout
    assert (out / 'scenes' / 'scene0000_00' / 'coord.npy').is_file()


# ------------------------------------------------------------------------------------------------
# resume and atomicity


def test_resume(root: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    first = convert(root, out, progress=False, verbose=False)
    assert (first.converted, first.skipped, first.failed) == (5, 0, [])
    meta1 = json.loads((out / 'meta.json').read_text())

    second = convert(root, out, progress=False, verbose=False)
    assert (second.converted, second.skipped, second.points) == (0, 5, 0)
    meta2 = json.loads((out / 'meta.json').read_text())
    assert meta2['splits'] == meta1['splits'] and meta2['scenes'] == meta1['scenes']

    redo = _ids(root, 'train')[1]
    ref = (out / 'scenes' / redo / 'segment20.npy').read_bytes()
    shutil.rmtree(out / 'scenes' / redo)
    stale = out / 'scenes' / f'.{_ids(root, "val")[0]}.tmp-{DEAD_PID}'
    stale.mkdir()
    (stale / 'coord.npy').write_bytes(b'partial')
    third = convert(root, out, progress=False, verbose=False)
    assert (third.converted, third.skipped) == (1, 4)
    assert (out / 'scenes' / redo / 'segment20.npy').read_bytes() == ref
    assert not stale.exists()
    assert sorted(p.name for p in (out / 'scenes').iterdir()) == sorted(
        i for s in ('train', 'val', 'test') for i in _ids(root, s))

    fourth = convert(root, out, overwrite=True, progress=False, verbose=False)
    assert (fourth.converted, fourth.skipped) == (5, 0)


def test_atomic_scene_dir_on_injected_failure(root: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    victim = _ids(root, 'train')[2]
    real_save = sc._save_array

    def flaky_save(path: Path, array: np.ndarray) -> None:
        if path.name == 'instance.npy' and victim in path.parent.name:
            raise OSError('disk full (injected)')
        real_save(path, array)

    monkeypatch.setattr(sc, '_save_array', flaky_save)
    out = tmp_path / 'out'
    rep = convert(root, out, workers=1, progress=False, verbose=False)
    assert rep.converted == 4 and len(rep.failed) == 1
    scene, file, reason = rep.failed[0]
    assert scene == victim and file == str(out / 'scenes' / victim)
    assert 'disk full (injected)' in reason
    assert sorted(p.name for p in (out / 'scenes').iterdir()) == sorted(
        i for s in ('train', 'val', 'test') for i in _ids(root, s) if i != victim)
    # a later clean run completes it
    monkeypatch.setattr(sc, '_save_array', real_save)
    rep = convert(root, out, progress=False, verbose=False)
    assert (rep.converted, rep.skipped, rep.failed) == (1, 4, [])


def test_scene_error_pickles() -> None:
    import pickle
    e = pickle.loads(pickle.dumps(SceneError('scene0000_00', '/x/y.ply', 'bad')))
    assert (e.scene_id, e.path, e.reason) == ('scene0000_00', '/x/y.ply', 'bad')
    assert str(e) == 'scene0000_00: /x/y.ply: bad'
