"""Direct tests of the converter's CLI and readers modules (the package tests go through convert())."""
import pytest

from geo3d.converters.scannet import cli, readers
from geo3d.utils.errors import DataNotFoundError


def test_cli_missing_root_exits_2(tmp_path, capsys):
    assert cli.main(['--root', str(tmp_path / 'nope'), '--out', str(tmp_path / 'out')]) == 2
    assert 'nope' in capsys.readouterr().err


def test_cli_rejects_zero_workers(tmp_path):
    with pytest.raises(SystemExit) as e:
        cli.main(['--root', str(tmp_path), '--out', str(tmp_path / 'o'), '--workers', '0'])
    assert e.value.code == 2


def test_read_label_map_tolerates_crcrlf_and_short_rows(tmp_path):
    cols = ['id', 'raw_category', 'category', 'count', 'nyu40id']
    rows = [['1', 'wall', 'wall', '8277', '1'], ['56', 'trash can', 'trash can', '1', '39']]
    text = '\r\r\n'.join(['\t'.join(cols)] + ['\t'.join(r) for r in rows])
    p = tmp_path / 'labels.tsv'
    p.write_bytes(text.encode())
    m = readers.read_label_map(str(p))
    assert m['wall'] == (1, 1) and m['trash can'] == (56, 39)   # (id, nyu40id)
    assert set(m) == {'wall', 'trash can'}


def test_missing_dataset_error_is_a_file_not_found_error():
    assert issubclass(DataNotFoundError, FileNotFoundError)
    from geo3d.datasets.scannet import ScanNetDataset
    with pytest.raises(DataNotFoundError, match='make demo'):
        ScanNetDataset(data_root='/nonexistent/geo3d', split='train')
