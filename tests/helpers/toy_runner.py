"""Toy model, dataset and hooks registered in geo3d's registries for runner tests."""
import json
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from geo3d.registry import DATASETS, HOOKS, MODELS


@MODELS.register_module(force=True)
class ToyResumeModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, inputs, labels=None, mode='tensor'):
        x = self.net(inputs)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(x, labels)}
        return x


@DATASETS.register_module(force=True)
class ToyResumeDataset(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(4, generator=g)
        return {'inputs': x, 'labels': int(x.sum() > 0)}


@HOOKS.register_module(force=True)
class RecordStateHook(Hook):
    """Writes the state the runner starts training from to work_dir/start_state.json."""

    def before_train(self, runner):
        opt = runner.optim_wrapper.optimizer
        bufs = [s.get('momentum_buffer') for s in opt.state.values()]
        hub = runner.message_hub
        lr_hist = hub.log_scalars['train/lr'].data[0].tolist() if 'train/lr' in hub.log_scalars else []
        state = {
            'epoch': runner.epoch, 'iter': runner.iter,
            'lr': opt.param_groups[0]['lr'],
            'scheduler_last_step': [s.last_step for s in runner.param_schedulers],
            'momentum_norm': float(sum(b.norm() for b in bufs if b is not None)) if bufs else 0.0,
            'lr_history_len': len(lr_hist),
            'weight_sum': float(sum(p.detach().sum() for p in runner.model.parameters())),
        }
        with open(osp.join(runner.work_dir, 'start_state.json'), 'w') as f:
            json.dump(state, f)


class SimulatedCrash(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class CrashAfterEpochHook(Hook):
    """Kills training after an epoch's checkpoint is written (runs after CheckpointHook)."""
    priority = 'LOWEST'

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:   # runner.epoch counts finished epochs after this hook
            raise SimulatedCrash(f'crash after epoch {self.epoch}')
