"""tools/train.py --launcher pytorch under torchrun with 2 CPU processes (gloo)."""
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import torch

from tests.helpers.tools import ROOT, TOY_CONFIG_HEAD


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_training(tmp_path):
    cfg = tmp_path / 'toy.py'
    cfg.write_text(TOY_CONFIG_HEAD + """
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
""")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={_free_port()}', osp.join(ROOT, 'tools/train.py'), str(cfg),
         '--launcher', 'pytorch', '--work-dir', str(work)],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # 32 samples, batch 8 per process, 2 processes -> 2 iterations per epoch
    assert re.search(r'Epoch\(train\)\s+\[2\]\[2/2\]', out), out[-3000:]
    assert 'MMDistributedDataParallel' in out
    ck = torch.load(work / 'epoch_2.pth', weights_only=False)
    assert ck['meta']['iter'] == 4
