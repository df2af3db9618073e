"""tools/eval_corruptions.py on a tiny KITTI tree: the clean row is tools/test.py's, corrupted
rows differ, corruption is deterministic per image (runs, batch sizes), clear errors."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from PIL import Image

from geo3d.converters.kitti import convert
from geo3d.evaluation.corrupted import (CorruptionCase, DemoDepth, PredictedDepth,
                                        corrupt_inputs, corruption_seed, demo_depth_path,
                                        format_table, parse_cases)
from geo3d.registry import MODELS
from tests.helpers.kitti_fixture import write_kitti_raw
from tests.helpers.tools import ROOT, load_tool

H, W = 64, 96
CORRUPTIONS = ['fog:3', 'rain+fog+night:2']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Converted tiny KITTI tree with textured images (flat colours would let median scaling
    cancel a corruption), rendered-style depth PNGs, a config and a random-init checkpoint."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp('eval_corr')
    raw = write_kitti_raw(tmp / 'raw', drives=(1, 2, 3), num_frames=5, height=48, width=144)
    rng = np.random.default_rng(0)
    pngs = [raw.image(f, k, cam) for f in raw.folders for k in range(5) for cam in (2, 3)]
    assert all(p.is_file() for p in pngs)
    for png in pngs:
        small = rng.integers(0, 256, (12, 36, 3), dtype=np.uint8)
        Image.fromarray(small).resize((144, 48), Image.BILINEAR).save(png)
        depth = np.linspace(60, 3, 48, dtype=np.float32)[:, None].repeat(144, 1)
        out = demo_depth_path(str(png))
        os.makedirs(osp.dirname(out), exist_ok=True)
        Image.fromarray((depth * 256).astype(np.uint16)).save(out)
    report = convert(raw.root, tmp / 'kitti', progress=False, verbose=False)
    assert not report.failed and report.subsets['test'] > 0
    cfg = tmp / 'tiny_corr.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/monodepth_kitti_demo.py')!r}]
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={str(tmp / 'kitti')!r}, height={H}, width={W}))
""")
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MODELS.build(dict(type='MonoDepth', frame_ids=(0, -1, 1, 's')))
        path = tmp / f'model{seed}.pth'
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
        ckpts.append(str(path))
    return tmp, str(cfg), ckpts


def run(tool, argv, capsys):
    capsys.readouterr()
    rc = tool.main(argv)
    return rc, capsys.readouterr()


def test_clean_row_is_test_py_and_corrupted_rows_differ(tiny, capsys):
    tmp, cfg, (ckpt, _) = tiny
    test, evalc = load_tool('test'), load_tool('eval_corruptions')
    rc, out = run(test, [cfg, ckpt, '--work-dir', str(tmp / 'test')], capsys)
    assert rc == 0
    printed = {k: float(v) for k, v in re.findall(r'depth/(\w+): ([-0-9.naN]+)', out.out)}
    js = tmp / 'out.json'
    table = tmp / 'table.md'
    rc, out = run(evalc, [cfg, ckpt, '--corruptions', *CORRUPTIONS, '--depth-source', 'demo',
                          '--json', str(js), '--out', str(table), '--no-progress'], capsys)
    assert rc == 0, out.err
    rows = json.loads(js.read_text())['rows']
    assert list(rows) == ['clean'] + CORRUPTIONS
    for k in ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3'):
        assert rows['clean'][k] == pytest.approx(printed[k], abs=6e-5), k
    assert rows['clean']['num_images'] == printed['num_images'] == 5
    for name in CORRUPTIONS:
        assert rows[name]['abs_rel'] != rows['clean']['abs_rel'], name
    text = table.read_text()
    assert '| corruption | abs_rel | sq_rel | rmse | rmse_log | a1 | a2 | a3 |' in text
    assert text in out.out + '\n' or '| rain+fog+night:2 |' in out.out

    # the same corrupted inputs in a second run and with another batch size
    js2 = tmp / 'out_b1.json'
    rc, _ = run(evalc, [cfg, ckpt, '--corruptions', *CORRUPTIONS, '--depth-source', 'demo',
                        '--json', str(js2), '--no-progress', '--cfg-options',
                        'test_dataloader.batch_size=1'], capsys)
    assert rc == 0
    rows_b1 = json.loads(js2.read_text())['rows']
    for name, vals in rows.items():  # batched convolutions round differently (~1e-9)
        assert rows_b1[name] == pytest.approx(vals, rel=1e-5, abs=1e-6), name


def test_reference_depth_source(tiny, capsys):
    """A reference model's depth drives fog: model 0 as its own reference (--depth-source
    model) and as --depth-source reference give identical rows; the inputs do not depend on
    the evaluated model (corrupt_inputs sees only images, depth, index, seed)."""
    tmp, cfg, (ckpt0, ckpt1) = tiny
    evalc = load_tool('eval_corruptions')
    rows = []
    for extra in (['--depth-source', 'reference', '--depth-config', cfg, '--depth-checkpoint',
                   ckpt0], []):
        js = tmp / f'ref{len(rows)}.json'
        rc, out = run(evalc, [cfg, ckpt0, '--corruptions', 'fog:4', '--json', str(js),
                              '--no-progress', *extra], capsys)
        assert rc == 0, out.err
        rows.append(json.loads(js.read_text())['rows'])
    assert rows[0] == rows[1]
    assert rows[0]['fog:4']['abs_rel'] != rows[0]['clean']['abs_rel']


def test_corrupt_inputs_is_per_image_deterministic():
    g = torch.Generator().manual_seed(0)
    color = torch.rand(3, 2, 3, 64, 64, generator=g)
    inputs = {'color': [color, torch.nn.functional.avg_pool2d(color.flatten(0, 1), 2)
                        .view(3, 2, 3, 32, 32)], 'K': torch.eye(4)}
    samples = [{'index': 10 + i, 'frame_ids': (0, -1)} for i in range(3)]
    depth = torch.full((3, 1, 64, 64), 20.0)
    case = parse_cases(['rain:4'])[1]
    a = corrupt_inputs(inputs, samples, case, depth, seed=5)
    b = corrupt_inputs(inputs, samples, case, depth, seed=5)
    assert torch.equal(a['color'][0], b['color'][0]) and a['color_aug'] is a['color']
    assert not torch.equal(a['color'][0], color)
    assert a['color'][1].shape == (3, 2, 3, 32, 32)
    # image 1 alone (batch of one) gets exactly what it got in the batch
    one = corrupt_inputs({'color': [color[1:2]]}, samples[1:2], case, depth[1:2], seed=5)
    assert torch.equal(one['color'][0][0], a['color'][0][1])
    # another seed or index changes it; the clean case passes the inputs through
    c = corrupt_inputs(inputs, samples, case, depth, seed=6)
    assert not torch.equal(c['color'][0], a['color'][0])
    assert corrupt_inputs(inputs, samples, CorruptionCase('clean'), None) is inputs
    assert corruption_seed(0, 1, 0, 'fog:3') != corruption_seed(0, 2, 0, 'fog:3')
    # a bare image batch works too
    t = corrupt_inputs(color[:, 0], samples, case, depth, seed=5)
    assert torch.equal(t, a['color'][0][:, 0])


def test_predicted_depth_is_scaled_to_the_lidar():
    disp = torch.full((1, 1, 8, 8), 0.5)  # depth 2 in network units
    gt = torch.zeros(1, 16, 16)
    gt[0, 8:, :] = 12.0
    samples = [{'index': 0, 'gt_depth': gt}]
    depth = PredictedDepth(lambda x: disp)(torch.zeros(1, 3, 8, 8), samples)
    assert torch.allclose(depth, torch.full_like(depth, 12.0))
    nogt = PredictedDepth(lambda x: disp, fallback_median=15.0)(torch.zeros(1, 3, 8, 8),
                                                                [{'index': 0}])
    assert torch.allclose(nogt, torch.full_like(nogt, 15.0))


def test_table_and_errors(tiny, capsys, tmp_path):
    text = format_table({'clean': dict(abs_rel=0.1, sq_rel=1, rmse=2, rmse_log=0.2, a1=0.9,
                                       a2=0.95, a3=0.99)})
    assert text.splitlines()[0].split('|')[2].strip() == 'abs_rel'
    assert '| clean | 0.1000 | 1.0000 |' in text
    tmp, cfg, (ckpt, _) = tiny
    evalc = load_tool('eval_corruptions')
    rc, out = run(evalc, [cfg, ckpt, '--corruptions', 'fog:9'], capsys)
    assert rc == 2 and 'severity must be in 1..5' in out.err
    rc, out = run(evalc, [cfg, ckpt, '--corruptions', 'hail'], capsys)
    assert rc == 2 and "unknown corruption 'hail'" in out.err
    rc, out = run(evalc, [cfg, ckpt, '--depth-source', 'reference'], capsys)
    assert rc == 2 and '--depth-config and --depth-checkpoint' in out.err
    rc, out = run(evalc, [cfg, str(tmp / 'none.pth')], capsys)
    assert rc == 2 and 'none.pth does not exist' in out.err
    with pytest.raises(FileNotFoundError, match='no rendered depth .*proj_depth_demo'):
        DemoDepth()(torch.zeros(1, 3, 8, 8), [{'index': 0, 'image_paths': [
            str(tmp_path / 'drive' / 'image_02' / 'data' / '0000000001.png')]}])
    with pytest.raises(ValueError, match='listed twice'):
        parse_cases(['fog:3', 'fog'])
