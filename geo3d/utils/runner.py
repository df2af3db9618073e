"""Shared set-up for the command-line tools: config loading, overrides, runner building."""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

import geo3d.utils.checkpoint  # noqa: F401  (registers the torch>=2.6 checkpoint loader)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The OpenMMLab flags shared by train/test tools."""
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_cfg.max_epochs=3 '
                             'model.backbone.base_channels=16')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (pytorch = torchrun)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, apply --cfg-options, --work-dir and --launcher."""
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg)
    return cfg


def setup_cpu_distributed(cfg: Config) -> None:
    """Distributed training without CUDA (gloo), which mmengine 0.10.7 does not do by itself.

    Its pytorch launcher calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; both fail on CPU. So the gloo process group is initialised here
    (mmengine then finds it initialised) and DDP is built without device ids.
    """
    import torch.distributed as dist
    env = cfg.get('env_cfg', {}) or {}
    dist_cfg = dict(env.get('dist_cfg', {}) or {})
    dist_cfg['backend'] = 'gloo'
    env['dist_cfg'] = dist_cfg
    cfg.env_cfg = env
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        dist.init_process_group(backend='gloo', **kwargs)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None            # CPU modules take no device ids
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision (CUDA only; warn on CPU)."""
    if not torch.cuda.is_available():
        print_log('--amp ignored: automatic mixed precision needs a CUDA device; '
                  'training in float32', logger='current', level=30)
        return
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        return
    if wrapper != 'OptimWrapper':
        raise SystemExit(f'--amp is only supported with OptimWrapper, config uses {wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def build_runner(cfg: Config):
    """Runner.from_cfg, or the registered runner named by ``runner_type``."""
    from mmengine.runner import Runner

    from geo3d.registry import RUNNERS
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(argv)
