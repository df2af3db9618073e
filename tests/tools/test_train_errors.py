"""tools/train.py stops with a clear message when the processed dataset is missing."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_scannet_gives_conversion_hint(tmp_path, capsys):
    missing = tmp_path / 'no_scannet_here'
    rc = _tool('train').main([
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
        _tool('train').main([str(tmp_path / 'nope.py')])
