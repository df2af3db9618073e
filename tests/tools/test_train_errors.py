"""tools/train.py stops with a clear message when the processed dataset is missing."""
import os.path as osp
from tests.helpers.tools import ROOT, load_tool


def test_missing_scannet_gives_conversion_hint(tmp_path, capsys):
    missing = tmp_path / 'no_scannet_here'
    rc = load_tool('train').main([
        osp.join(ROOT, 'configs/spunet_seg_scannet.py'), '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', f'train_dataloader.dataset.data_root={missing}',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(missing) in err
    assert 'data_converters/scannet.py' in err and 'make demo' in err


def test_missing_config_file(tmp_path):
    import pytest
    with pytest.raises(SystemExit, match='does not exist'):
        load_tool('train').main([str(tmp_path / 'nope.py')])
