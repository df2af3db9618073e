"""Cityscapes converter: camera JSON and intrinsics normalisation against hand computations,
depth from disparity against the closed form, lists and info files, resumability, atomicity,
split modes, pre-resized images, and problem files reported with their path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import geo3d.utils.io as gio
from geo3d.converters.cityscapes import (CityscapesCamera, InputError, convert,
                                         disparity_to_depth, main, normalized_intrinsics,
                                         parse_frame_name, read_camera_json, read_split_file)
from tests.helpers.cityscapes_fixture import (HOOD, disparity_values, fixture_color,
                                              write_cityscapes)

REPO = Path(__file__).resolve().parents[2]
AACHEN_JSON = {'extrinsic': {'baseline': 0.209313, 'pitch': 0.038, 'roll': 0.0, 'x': 1.7,
                             'y': 0.1, 'yaw': -0.0195, 'z': 1.22},
               'intrinsic': {'fx': 2262.52, 'fy': 2265.3017905988554, 'u0': 1096.98,
                             'v0': 513.137}}


@pytest.fixture
def cs(tmp_path: Path):
    return write_cityscapes(tmp_path / 'cs')


def _convert(root: Path, out: Path, **kw):
    return convert(root, out, progress=False, verbose=False, **kw)


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob('*') if p.is_file())


# ------------------------------------------------------------------------------------------------
# camera and disparity

def test_intrinsics_normalised_to_the_cropped_image(tmp_path: Path) -> None:
    path = tmp_path / 'aachen_000000_000019_camera.json'
    path.write_text(json.dumps(AACHEN_JSON))
    cam = read_camera_json(path)
    assert cam == CityscapesCamera(2262.52, 2265.3017905988554, 1096.98, 513.137, 0.209313)
    # by hand: W = 2048, H' = 0.75 * 1024 = 768 (ManyDepth's cityscapes_evaldataset.py)
    got = normalized_intrinsics(cam, 2048, 1024)
    np.testing.assert_allclose(got, [2262.52 / 2048, 2265.3017905988554 / 768, 1096.98 / 2048,
                                     513.137 / 768], rtol=1e-15)
    assert got[0] == pytest.approx(1.104746, abs=1e-6) and got[3] == pytest.approx(0.668147,
                                                                                  abs=1e-6)
    np.testing.assert_allclose(normalized_intrinsics(cam, 2048, 1024, crop_bottom=0.0)[1::2],
                               [2265.3017905988554 / 1024, 513.137 / 1024])


def test_bad_camera_json_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / 'x_camera.json'
    bad = json.loads(json.dumps(AACHEN_JSON))
    del bad['extrinsic']['baseline']
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r'x_camera.json: missing or non-numeric '
                                         r'"extrinsic.baseline"'):
        read_camera_json(path)
    bad['extrinsic']['baseline'] = 0.2
    bad['intrinsic']['fx'] = -1
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r'"intrinsic.fx" must be finite and positive'):
        read_camera_json(path)
    path.write_text('{"intrinsic": ')
    with pytest.raises(ValueError, match='x_camera.json: not a readable JSON file'):
        read_camera_json(path)


def test_disparity_to_depth_closed_form() -> None:
    # dataset-formats.md §3.4: p = 1 + 20.5 * 256 -> d = 20.5 px -> z = 0.209313 * 2262.52 / 20.5
    raw = np.array([[0, 1, 1 + int(20.5 * 256), 257]], np.uint16)
    depth = disparity_to_depth(raw, 0.209313, 2262.52)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[0, 0, 0.209313 * 2262.52 / 20.5, 0.209313 * 2262.52]],
                               rtol=1e-7)
    assert depth[0, 2] == pytest.approx(23.10, abs=5e-3)


def test_frame_names() -> None:
    assert parse_frame_name('aachen_000012_000019_leftImg8bit.png') == ('aachen', 12, 19)
    assert parse_frame_name('aachen_000012_000019_camera.json', 'leftImg8bit') is None
    assert parse_frame_name('aachen_12_19_leftImg8bit.png') is None
    assert parse_frame_name('.DS_Store') is None


# ------------------------------------------------------------------------------------------------
# end to end

def test_convert_end_to_end(cs, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    rep = _convert(cs.root, out)
    assert not rep.failed and rep.subsets == {'train': 5, 'val': 0, 'test': 1}
    assert (rep.scanned, rep.gt_exported) == (2, 1)
    sp = out / 'splits' / 'auto'
    # every frame t of the snippet (15..23) whose t-2 and t+2 exist; ManyDepth's line format
    assert (sp / 'train_files.txt').read_text().splitlines() == [
        f'aachen aachen_000000_{f:06d}' for f in range(17, 22)]
    assert (sp / 'test_files.txt').read_text() == 'berlin berlin_000000_000019\n'
    assert not (sp / 'val_files.txt').exists()  # 1 snippet: nothing to hold out

    train = json.loads((sp / 'train_info.json').read_text())
    assert (train['sample_gap'], train['frame_offsets'], train['crop_bottom']) == (2, [-1, 1],
                                                                                    0.25)
    assert train['images'] == {'root': 'raw', 'dir': 'leftImg8bit_sequence', 'ext': '.png',
                               'cropped': False, 'size': None}
    fr = train['frames'][0]
    assert fr['image'] == 'leftImg8bit_sequence/train/aachen/aachen_000000_000017_leftImg8bit.png'
    assert fr['camera'] == 'camera/train/aachen/aachen_000000_000019_camera.json'
    assert (fr['width'], fr['height'], fr['crop_height']) == (128, 64, 48)
    # the tiny JSON is the real one scaled by 1/16: the normalised values are the full-size ones
    np.testing.assert_allclose(fr['intrinsics'], [2262.52 / 2048, 2265.3017905988554 / 768,
                                                  1096.98 / 2048, 513.137 / 768], rtol=1e-12)
    assert fr['gt_depth'] is None and fr['baseline'] == 0.209313

    test = json.loads((sp / 'test_info.json').read_text())
    rec = test['frames'][0]
    assert test['frame_offsets'] == [-1] and test['gt_depth_dir'] == 'gt_depths'
    assert rec['gt_depth'] == 'gt_depths/berlin/berlin_000000_000019_depth.npy'
    gt = np.load(out / rec['gt_depth'])
    cam = cs.camera_values('berlin')
    p = disparity_values(cs.height, cs.width).astype(np.float64)
    ref = np.where(p > 1, cam['extrinsic']['baseline'] * cam['intrinsic']['fx'] /
                   np.maximum((p - 1) / 256, 1e-12), 0.0)
    assert gt.dtype == np.float32 and gt.shape == (64, 128)  # full image size, hood included
    np.testing.assert_allclose(gt, ref, rtol=1e-6)
    assert (gt[p <= 1] == 0).all() and (p <= 1).sum() > 100
    assert 1.9 < gt[gt > 0].min() < gt.max() < 80
    assert sorted(os.listdir(out / 'cities')) == ['test', 'train']
    assert not (out / 'failed.txt').exists()
    assert 'cityscapes[auto]: cities 2 scanned' in rep.summary()


def test_resume_skips_finished_work(cs, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    _convert(cs.root, out, workers=2)  # the worker pool path
    gt = out / 'gt_depths' / 'berlin' / 'berlin_000000_000019_depth.npy'
    before = {f: (out / f).stat().st_mtime_ns for f in _files(out)}
    rep = _convert(cs.root, out)
    assert (rep.scanned, rep.skipped, rep.gt_exported, rep.gt_skipped) == (0, 2, 0, 1)
    assert (rep.files_written, rep.files_unchanged) == (0, 4)
    assert {f: (out / f).stat().st_mtime_ns for f in _files(out)} == before

    gt.unlink()
    (out / 'cities' / 'train' / 'aachen.json').unlink()
    rep = _convert(cs.root, out)
    assert (rep.scanned, rep.skipped, rep.gt_exported) == (1, 1, 1) and gt.is_file()

    # a changed city (a frame rewritten) is rescanned; --overwrite redoes everything
    Image.new('RGB', (cs.width, cs.height), (1, 2, 3)).save(cs.image('test', 'berlin', 0, 16))
    rep = _convert(cs.root, out)
    assert (rep.scanned, rep.skipped) == (1, 1)
    rep = _convert(cs.root, out, overwrite=True)
    assert (rep.scanned, rep.skipped, rep.gt_exported, rep.gt_skipped) == (2, 0, 1, 0)


def test_problem_files_are_reported_and_their_samples_skipped(tmp_path: Path) -> None:
    cs = write_cityscapes(tmp_path / 'cs', {'train': {'aachen': (0, 1)},
                                            'test': {'berlin': (0, 1)}})
    cam = cs.camera('train', 'aachen', 1)
    cam.unlink()
    gap = cs.image('train', 'aachen', 0, 20)
    gap.unlink()
    cs.disparity('test', 'berlin', 1).unlink()
    bad_img = cs.image('train', 'aachen', 0, 23)
    bad_img.write_bytes(b'not a png')
    out = tmp_path / 'out'
    rep = _convert(cs.root, out, val_fraction=0.0)
    failed = {f: r for _, f, r in rep.failed}
    rel = lambda p: str(p.relative_to(cs.root))  # noqa: E731
    assert failed[rel(cam)] == ('missing camera JSON of snippet aachen_000001 (intrinsics); '
                                '5 sample(s) skipped')
    # the missing frame 20 is the t+2 neighbour of 18 (and no target itself)
    assert failed[rel(gap)] == ('missing frame +1 (t+2) of aachen_000000_000018; 1 sample(s) '
                                'skipped')
    assert failed[rel(bad_img)].startswith('corrupt image')  # neighbour of 21
    assert 'missing disparity map of berlin_000001_000019' in \
        failed[rel(cs.disparity('test', 'berlin', 1))]
    assert rep.subsets == {'train': 2, 'val': 0, 'test': 1} and rep.samples_skipped == 8
    assert (out / 'splits/auto/train_files.txt').read_text() == \
        'aachen aachen_000000_000017\naachen aachen_000000_000019\n'
    text = (out / 'failed.txt').read_text()
    assert f'{rel(cam)}: missing camera JSON' in text and len(text.splitlines()) == 4
    # the CLI says so in its exit code; a good tree converts cleanly again
    assert main(['--root', str(cs.root), '--out', str(out), '--no-progress',
                 '--val-fraction', '0']) == 1


def test_corrupt_camera_json_of_a_test_frame(cs, tmp_path: Path) -> None:
    cs.camera('test', 'berlin', 0).write_text('{"extrinsic": {}}')
    rep = _convert(cs.root, tmp_path / 'out')
    assert rep.subsets['test'] == 0
    (where, f, reason), = rep.failed
    assert f == 'camera/test/berlin/berlin_000000_000019_camera.json'
    assert reason.startswith('missing or non-numeric "intrinsic.fx"')
    assert not (tmp_path / 'out' / 'splits' / 'auto' / 'test_info.json').exists()


def test_no_partial_files_after_a_crash(cs, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / 'out'
    real_replace = os.replace

    def crash(src, dst, *a, **k):
        if str(dst).endswith('_depth.npy'):
            raise KeyboardInterrupt  # killed after the data went to the temp file
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(gio.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        _convert(cs.root, out)
    left = _files(out)
    assert not [f for f in left if '.tmp-' in f or f.endswith('.npy')]
    assert not (out / 'splits' / 'auto' / 'test_info.json').exists()
    for f in left:  # what was written is complete (the city scans)
        assert f.startswith('cities/') and json.loads((out / f).read_text())['city']

    # a write error is reported, the sample skipped, nothing half-written
    def fail(src, dst, *a, **k):
        if str(dst).endswith('_depth.npy'):
            raise OSError(28, 'No space left on device')
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(gio.os, 'replace', fail)
    rep = _convert(cs.root, out)
    assert rep.subsets['test'] == 0 and rep.skipped == 2
    assert 'No space left on device' in rep.failed[0][2] and \
        rep.failed[0][1].endswith('berlin_000000_000019_disparity.png')
    assert not [f for f in _files(out) if '.tmp-' in f or f.endswith('.npy')]

    monkeypatch.setattr(gio.os, 'replace', real_replace)
    rep = _convert(cs.root, out)  # resumes: cached scans, the ground truth written now
    assert not rep.failed and (rep.skipped, rep.gt_exported) == (2, 1)
    assert rep.subsets == {'train': 5, 'val': 0, 'test': 1}


# ------------------------------------------------------------------------------------------------
# split modes

def test_random_and_official_val(tmp_path: Path) -> None:
    cs = write_cityscapes(tmp_path / 'cs', {'train': {'aachen': (0, 1, 2), 'bochum': (4,)},
                                            'val': {'frankfurt': (0,)},
                                            'test': {'berlin': (0,)}}, frames=range(17, 22))
    rep = _convert(cs.root, tmp_path / 'a', val_fraction=0.25, seed=3)
    assert rep.subsets == {'train': 3, 'val': 1, 'test': 1}  # 1 target (19) per snippet
    sp = tmp_path / 'a' / 'splits' / 'auto'
    train = set(sp.joinpath('train_files.txt').read_text().splitlines())
    val = set(sp.joinpath('val_files.txt').read_text().splitlines())
    assert not train & val and len(train | val) == 4
    assert all(ln.split()[0] in ('aachen', 'bochum') for ln in train | val)
    rep2 = _convert(cs.root, tmp_path / 'b', val_fraction=0.25, seed=3)
    assert rep2.subsets == rep.subsets
    assert (tmp_path / 'b/splits/auto/val_files.txt').read_text() == \
        sp.joinpath('val_files.txt').read_text()  # seeded

    rep = _convert(cs.root, tmp_path / 'c', val_mode='official')
    assert rep.subsets == {'train': 4, 'val': 1, 'test': 1}
    assert (tmp_path / 'c/splits/auto/val_files.txt').read_text() == \
        'frankfurt frankfurt_000000_000019\n'
    # sample_gap 1 and one-sided offsets
    rep = _convert(cs.root, tmp_path / 'd', sample_gap=1, frame_offsets=(-1,), val_fraction=0)
    assert rep.subsets['train'] == 4 * 4  # frames 18..21 of each snippet


def test_named_split_manydepth_format(cs, tmp_path: Path) -> None:
    sd = tmp_path / 'splits' / 'cityscapes'
    sd.mkdir(parents=True)
    (sd / 'test_files.txt').write_text('berlin berlin_000000_000019\n\n')
    (sd / 'train_files.txt').write_text('aachen aachen_000000_000018\naachen '
                                        'aachen_000000_000022\n')
    out = tmp_path / 'out'
    rep = _convert(cs.root, out, split='cityscapes', split_dir=tmp_path / 'splits')
    assert rep.subsets == {'train': 1, 'test': 1}  # 22 needs frame 24
    (where, f, reason), = rep.failed
    assert where == f'{sd / "train_files.txt"}:2' and f.endswith('aachen_000000_000024_'
                                                                 'leftImg8bit.png')
    assert reason.startswith('missing frame +1 (t+2) of aachen_000000_000022')
    assert (out / 'gt_depths/berlin/berlin_000000_000019_depth.npy').is_file()
    assert json.loads((out / 'splits/cityscapes/test_info.json').read_text())['split'] == \
        'cityscapes'

    (sd / 'train_files.txt').write_text('aachen aachen_000000_000018\nulm ulm_000001_000003\n')
    with pytest.raises(InputError, match=r"train_files.txt:2: city 'ulm' is in none of"):
        _convert(cs.root, out, split='cityscapes', split_dir=tmp_path / 'splits')
    (sd / 'train_files.txt').write_text('aachen aachen_000000_18\n')
    with pytest.raises(InputError, match=r'train_files.txt:1: expected "<city> <city>_<seq:06d>'):
        read_split_file(sd / 'train_files.txt')
    with pytest.raises(InputError, match='no split files'):
        _convert(cs.root, out, split='eigen', split_dir=tmp_path / 'splits')


def test_resized_images(cs, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    rep = _convert(cs.root, out, resize=(64, 24), image_format='png')
    assert rep.images_written == 9 + 2  # train frames 15..23, test frames 17 and 19
    info = json.loads((out / 'splits/auto/train_info.json').read_text())
    assert info['images'] == {'root': 'out', 'dir': 'images/64x24', 'ext': '.png',
                              'cropped': True, 'size': [64, 24]}
    img = np.asarray(Image.open(out / 'images/64x24/train/aachen/'
                                      'aachen_000000_000016_leftImg8bit.png'))
    assert img.shape == (24, 64, 3)
    assert (img == np.array(fixture_color('aachen', 0, 16), np.uint8)).all()  # hood cut
    assert not (img == np.array(HOOD, np.uint8)).all(-1).any()
    rep = _convert(cs.root, out, resize=(64, 24), image_format='png')
    assert (rep.images_written, rep.images_skipped) == (0, 11)


def test_bad_arguments_and_cli(cs, tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match='is not a directory'):
        _convert(tmp_path / 'nope', tmp_path / 'o')
    with pytest.raises(InputError, match='sample_gap must be >= 1'):
        _convert(cs.root, tmp_path / 'o', sample_gap=0)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InputError, match='leftImg8bit_sequence_trainvaltest.zip'):
        _convert(empty, tmp_path / 'o')
    assert main(['--root', str(empty), '--out', str(tmp_path / 'o'), '--no-progress']) == 2
    assert 'error: no cities under' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--root', str(cs.root), '--out', str(tmp_path / 'o'), '--resize', '64by24'])
    assert '--resize must be WIDTHxHEIGHT' in capsys.readouterr().err


def test_cli_script_runs(cs, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(REPO / 'data_converters' / 'cityscapes.py'),
                        '--root', str(cs.root), '--out', str(tmp_path / 'o'), '--no-progress'],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'cityscapes[auto]: cities 2 scanned' in r.stdout and 'train 5' in r.stdout
