"""tools/probe_report.py: the table and the gap in points, bad input named."""
from __future__ import annotations

import json

from tests.helpers.tools import load_tool


def _write(path, miou, iou):
    path.write_text(json.dumps(dict(mIoU=miou, label_set='scannet20', mode='cached',
                                    per_class_iou=iou)))


def test_report_gap_and_columns(tmp_path, capsys):
    _write(tmp_path / 'a.json', 0.30, {'wall': 0.5, 'floor': 0.1})
    _write(tmp_path / 'b.json', 0.1725, {'wall': 0.25, 'floor': 0.095})
    tool = load_tool('probe_report')
    assert tool.main([f'msm={tmp_path / "a.json"}', f'random={tmp_path / "b.json"}']) == 0
    out = capsys.readouterr().out
    assert 'msm - random: +12.8 mIoU points (0.3000 vs 0.1725' in out
    wall = [ln for ln in out.splitlines() if ln.startswith('wall')][0].split()
    assert wall == ['wall', '0.5000', '0.2500']


def test_missing_and_malformed_files_are_named(tmp_path, capsys):
    tool = load_tool('probe_report')
    assert tool.main([f'x={tmp_path / "nope.json"}']) == 2
    assert 'nope.json: no such probe result' in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{"acc": 1}')
    assert tool.main([str(tmp_path / 'bad.json')]) == 2
    assert 'bad.json: not a probe result' in capsys.readouterr().err
