"""Algorithms on 2 gloo processes: DDP-averaged gradients of SimCLR equal single-process training
on the global batch, and MoCo enqueues the keys of every rank in rank order."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import timm.models.vision_transformer  # noqa: F401  (imported once, before the fork)
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geo3d.registry import MODELS

WORLD, LOCAL, S = 2, 4, 8
BACKBONE = dict(type='SmallViT', img_size=S, patch_size=4, embed_dim=16, depth=1, num_heads=2)
# no BatchNorm: its statistics are per rank (SyncBN would be needed), the loss is not
NECK = dict(type='ProjectionMLP', hidden_channels=16, out_channels=8, with_bn=False)


def _images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(WORLD * LOCAL, 2, 3, S, S, generator=g, dtype=torch.float64)


def _build(kind: str):
    torch.manual_seed(0)
    if kind == 'simclr':
        cfg = dict(type='SimCLR', neck=NECK,
                   loss=dict(type='NTXentLoss', temperature=0.3, gather_distributed=True))
    else:
        cfg = dict(type='MoCoV2', neck=NECK, queue_size=16, momentum=0.5)
    return MODELS.build(dict(cfg, backbone=BACKBONE)).double().train()


def simclr_grads(part: int | None) -> list[torch.Tensor]:
    """Parameter gradients of one SimCLR loss; per rank they are averaged as DDP does."""
    model = _build('simclr')
    x = _images()
    if part is not None:
        x = x[part * LOCAL:(part + 1) * LOCAL]
    model(x, mode='loss')['loss'].backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    if part is not None:
        for g in grads:
            dist.all_reduce(g)
            g /= WORLD
    return grads


def moco_queue(part: int) -> dict[str, torch.Tensor]:
    model = _build('moco')
    x = _images()[part * LOCAL:(part + 1) * LOCAL]
    model(x, mode='loss')
    keys = model.keys(x[:, 1])
    return {'queue': model.queue.clone(), 'ptr': model.queue_ptr.clone(), 'keys': keys}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD)
    try:
        torch.save({'simclr': simclr_grads(rank), 'moco': moco_queue(rank)},
                   os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def rank_results(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp('gloo_algorithms')
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn'
    ctx = mp.start_processes(_worker, args=(str(tmp / 'init'), str(tmp)), nprocs=WORLD,
                             join=False, start_method=method)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail('the 2-process gloo workers did not finish within 120 s')
    return [torch.load(tmp / f'rank{r}.pt', weights_only=False) for r in range(WORLD)]


def test_simclr_ddp_gradients_equal_single_process(rank_results) -> None:
    single = simclr_grads(None)
    assert any(float(g.abs().max()) > 0 for g in single)
    for r, res in enumerate(rank_results):
        for i, (g_avg, g_full) in enumerate(zip(res['simclr'], single)):
            torch.testing.assert_close(g_avg, g_full, rtol=1e-8, atol=1e-11,
                                       msg=lambda m: f'rank {r} parameter {i}: {m}')


def test_moco_enqueues_the_keys_of_all_ranks(rank_results) -> None:
    keys = torch.cat([res['moco']['keys'] for res in rank_results])  # rank order
    for res in rank_results:
        torch.testing.assert_close(res['moco']['queue'][:WORLD * LOCAL], keys)
        assert int(res['moco']['ptr']) == WORLD * LOCAL
    torch.testing.assert_close(rank_results[0]['moco']['queue'], rank_results[1]['moco']['queue'])
