"""Losses with gather_distributed=True on 2 gloo processes equal the single-process loss of the
global batch.

Convention (geo3d.models.ssl2d.distributed): each rank computes the loss of the global batch,
so the value is identical on every rank and equals the single-process value; the gradient
reaching a rank's local embeddings is world_size times the single-process gradient of that
slice, and DDP's averaging of parameter gradients turns it back into the single-process
parameter gradient (checked with a shared linear projector). Parameters inside a loss (AMCL's
temperature network) get the single-process gradient on every rank directly.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geo3d.models.ssl2d import distributed as d2
from geo3d.models.ssl2d.losses import (AMCLLoss, BarlowTwinsLoss, CACRLoss, DCLLoss, DCLWLoss,
                                       GroCoLoss, ISogCLRLoss, MixedBarlowTwinsLoss, NTXentLoss)

WORLD, LOCAL = 2, 4
CASES = ['nt_xent', 'barlow_twins', 'dcl', 'dclw', 'mixed_barlow_twins', 'cacr', 'amcl',
         'isogclr']
if importlib.util.find_spec('diffsort') is not None:
    CASES.append('groco')


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def run_case(name: str, part: int | None) -> dict:
    """Value and gradients of one loss. ``part=None``: one process, the whole global batch;
    ``part=r``: rank r's slice with gather_distributed=True (inside a process group)."""
    gather = part is not None

    def local(t: torch.Tensor) -> torch.Tensor:
        return t if part is None else t[part * LOCAL:(part + 1) * LOCAL]

    n = WORLD * LOCAL
    extra: dict[str, object] = {}
    if name in ('cacr', 'groco'):
        tensors = [_randn(1, n, 3, 4)]
    elif name == 'amcl':
        tensors = [_randn(2, n, 2, 4), _randn(3, n, 2, 4)]
    elif name == 'mixed_barlow_twins':
        tensors = [_randn(4, n, 5), _randn(5, n, 5), _randn(6, n, 5)]
    else:
        tensors = [_randn(7, n, 5), _randn(8, n, 5)]
    leaves = [local(t).clone().requires_grad_(True) for t in tensors]

    if name == 'nt_xent':
        value = NTXentLoss(0.3, gather_distributed=gather)(*leaves)
    elif name == 'barlow_twins':
        value = BarlowTwinsLoss(0.1, gather_distributed=gather)(*leaves)
    elif name == 'dcl':
        value = DCLLoss(0.3, gather_distributed=gather)(*leaves)
    elif name == 'dclw':
        value = DCLWLoss(0.3, 0.5, gather_distributed=gather)(*leaves)
    elif name == 'cacr':
        value = CACRLoss(tau_neg=2.0, gather_distributed=gather)(*leaves)
    elif name == 'groco':
        value = GroCoLoss(topk_neg=3, steepness=2.0, gather_distributed=gather)(*leaves)
    elif name == 'mixed_barlow_twins':
        # each rank mixes its own batch with its own alpha
        perms = [torch.tensor([2, 0, 3, 1]), torch.tensor([1, 3, 0, 2])]
        alphas = [0.3, 0.8]
        loss = MixedBarlowTwinsLoss(0.1, gather_distributed=gather)
        if part is None:
            perm = torch.cat([p + r * LOCAL for r, p in enumerate(perms)])
            alpha = torch.tensor([a for a in alphas for _ in range(LOCAL)], dtype=torch.float64)
            value = loss(*leaves, alpha, perm)
        else:
            value = loss(*leaves, alphas[part], perms[part])
    elif name == 'amcl':
        torch.manual_seed(0)
        loss = AMCLLoss(dim=4, num_heads=2, topk=2, gather_distributed=gather).double()
        value = loss(*leaves)
        params = list(loss.parameters())
        extra['param_grads'] = torch.autograd.grad(value, params, retain_graph=True)
    elif name == 'isogclr':
        loss = ISogCLRLoss(20, gather_distributed=gather).double()
        index = torch.tensor([9, 2, 17, 5, 0, 11, 3, 14])
        value = loss(*leaves, local(index))
        extra['buffers'] = {k: v.clone() for k, v in loss.state_dict().items()}
    else:
        raise KeyError(name)
    grads = torch.autograd.grad(value, leaves)
    return dict(value=value.detach(), grads=[g.detach() for g in grads], **extra)


def projector_case(part: int | None) -> list[torch.Tensor]:
    """NT-Xent on a shared linear projector: parameter gradients after DDP-style averaging."""
    torch.manual_seed(1)
    proj = torch.nn.Linear(6, 5).double()
    x_a, x_b = _randn(10, WORLD * LOCAL, 6), _randn(11, WORLD * LOCAL, 6)
    if part is not None:
        x_a = x_a[part * LOCAL:(part + 1) * LOCAL]
        x_b = x_b[part * LOCAL:(part + 1) * LOCAL]
    NTXentLoss(0.3, gather_distributed=part is not None)(proj(x_a), proj(x_b)).backward()
    grads = [p.grad.detach().clone() for p in proj.parameters()]
    if part is not None:
        for g in grads:  # what DDP does: average over ranks
            dist.all_reduce(g)
            g /= WORLD
    return grads


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD)
    try:
        out: dict[str, object] = {
            'is_distributed': d2.is_distributed(), 'world_size': d2.world_size(),
            'rank': d2.rank(),
            'cases': {name: run_case(name, rank) for name in CASES},
            'projector': projector_case(rank),
        }
        try:  # unequal local batches must fail clearly on every rank
            d2.gather_cat(torch.zeros(rank + 1, 3), 'z_a')
            out['shape_error'] = ''
        except ValueError as err:
            out['shape_error'] = str(err)
        torch.save(out, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def rank_results(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp('gloo')
    # fork: the children inherit the imported modules (spawn would re-import torch and geo3d
    # in each child, seconds on a loaded 2-core machine)
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


def test_process_group_seen_by_helpers(rank_results) -> None:
    for r, res in enumerate(rank_results):
        assert res['is_distributed'] and res['world_size'] == WORLD and res['rank'] == r
    assert not d2.is_distributed() and d2.world_size() == 1 and d2.rank() == 0
    x = torch.randn(3, 2)
    assert d2.gather_cat(x) is x  # identity without a process group


@pytest.mark.parametrize('name', CASES)
def test_value_and_local_gradients_match_single_process(name: str, rank_results) -> None:
    single = run_case(name, None)
    for r, res in enumerate(rank_results):
        got = res['cases'][name]
        torch.testing.assert_close(got['value'], single['value'], rtol=1e-10, atol=1e-12,
                                   msg=lambda m: f'{name} value on rank {r}: {m}')
        for i, (g_local, g_full) in enumerate(zip(got['grads'], single['grads'])):
            expected = WORLD * g_full[r * LOCAL:(r + 1) * LOCAL]
            torch.testing.assert_close(g_local, expected, rtol=1e-8, atol=1e-11,
                                       msg=lambda m: f'{name} grad {i} on rank {r}: {m}')
        if 'param_grads' in single:
            for g_local, g_full in zip(got['param_grads'], single['param_grads']):
                torch.testing.assert_close(g_local, g_full, rtol=1e-8, atol=1e-11)
        if 'buffers' in single:
            for key, value in single['buffers'].items():
                torch.testing.assert_close(got['buffers'][key], value, rtol=1e-10, atol=1e-12)


def test_ddp_averaged_parameter_gradients_equal_single_process(rank_results) -> None:
    single = projector_case(None)
    for res in rank_results:
        for g_avg, g_full in zip(res['projector'], single):
            torch.testing.assert_close(g_avg, g_full, rtol=1e-8, atol=1e-11)


def test_unequal_local_batches_raise_clear_error(rank_results) -> None:
    for res in rank_results:
        assert 'z_a must have the same shape on every rank' in res['shape_error']
        assert '[(1, 3), (2, 3)]' in res['shape_error']
