"""geo3d's restricted checkpoint loader (torch >= 2.6)."""
import collections
import os.path as osp

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader

from geo3d.utils.checkpoint import TRUST_ENV, load_checkpoint_file, load_local_checkpoint


class Payload:  # a class no checkpoint should need
    def __init__(self):
        self.x = 1


def test_plain_state_dict_roundtrip(tmp_path):
    sd = collections.OrderedDict(w=torch.randn(3, 2), b=torch.zeros(2))
    p = tmp_path / 'w.pth'
    torch.save(sd, p)
    out = load_checkpoint_file(str(p))
    torch.testing.assert_close(out['w'], sd['w'])


def test_history_buffer_and_numpy_load(tmp_path):
    import numpy as np
    hb = HistoryBuffer()
    for v in (1.0, 2.0, 3.0):
        hb.update(v)
    obj = {'hub': {'loss': hb}, 'arr': np.arange(4.0), 'scalar': np.float64(2.5),
           'stats': hb._statistics_methods}
    p = tmp_path / 'c.pth'
    torch.save(obj, p)
    out = load_checkpoint_file(str(p))
    assert out['hub']['loss'].mean() == pytest.approx(2.0)
    assert out['scalar'] == 2.5 and out['arr'].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_foreign_object_refused_with_file_name(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    p = tmp_path / 'evil.pth'
    torch.save({'x': Payload()}, p)
    with pytest.raises(RuntimeError) as e:
        load_checkpoint_file(str(p))
    assert str(p) in str(e.value) and 'Payload' in str(e.value) and TRUST_ENV in str(e.value)
    monkeypatch.setenv(TRUST_ENV, '1')
    assert load_checkpoint_file(str(p))['x'].x == 1


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(RuntimeError, match='bad.pth'):
        load_checkpoint_file(str(bad))


def test_registered_as_mmengine_local_loader(tmp_path):
    assert CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'x.pth')) is load_local_checkpoint


def test_one_cycle_scheduler_state_loads(tmp_path):
    """OneCycle keeps its annealing function in its state dict (getattr on the class)."""
    from mmengine.optim.scheduler import OneCycleLR
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = OneCycleLR(opt, eta_max=0.1, total_steps=10)
    p = tmp_path / 's.pth'
    torch.save({'param_schedulers': [sched.state_dict()]}, p)
    out = load_checkpoint_file(str(p))['param_schedulers'][0]
    assert out['anneal_func'] is sched.state_dict()['anneal_func']
    assert out['total_steps'] == 10


def test_getattr_gadgets_refused(tmp_path, monkeypatch):
    """getattr is allowed only for the functions a checkpoint needs, not e.g. ndarray.tofile."""
    import pickle as pkl

    import numpy as np
    monkeypatch.delenv(TRUST_ENV, raising=False)

    class Gadget:
        def __reduce__(self):
            return (getattr, (np.zeros(1), 'tofile'))

    p = tmp_path / 'g.pth'
    torch.save({'x': Gadget()}, p, pickle_protocol=2)
    with pytest.raises(RuntimeError, match='tofile'):
        load_checkpoint_file(str(p))
