"""ISogCLRLoss against a per-sample float64 loop of the official algorithm (loss, gradients
and the s / u / tau state over two steps), eval mode, errors."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.models.ssl2d.losses.isogclr import ISogCLRLoss
from tests.models.ssl2d.helpers import double_leaves, unit

HP = dict(rho=0.4, gamma=0.8, tau_init=0.1, tau_min=0.05, tau_max=1.0, eta=0.03, beta_u=0.5,
          grad_clip=3.0)


class LoopISogCLR:
    """One anchor and one negative at a time, state in Python lists."""

    def __init__(self, num_samples: int, rho, gamma, tau_init, tau_min, tau_max, eta, beta_u,
                 grad_clip) -> None:
        self.hp = dict(rho=rho, gamma=gamma, tau_min=tau_min, tau_max=tau_max, eta=eta,
                       beta_u=beta_u, clip=grad_clip)
        self.s = [0.0] * num_samples
        self.tau = [tau_init] * num_samples
        self.u = [0.0] * num_samples
        self.seen = [False] * num_samples

    def step(self, z_a: torch.Tensor, z_b: torch.Tensor, index: list[int]) -> torch.Tensor:
        hp, n = self.hp, len(index)
        views = [unit(z_a), unit(z_b)]
        total = z_a.new_zeros(())
        s_new = [[0.0, 0.0] for _ in range(n)]
        g_tau = [[0.0, 0.0] for _ in range(n)]
        for v in range(2):
            for i in range(n):
                idx, tau = index[i], self.tau[index[i]]
                sims = [torch.dot(views[v][i], views[w][k]) for w in range(2) for k in range(n)
                        if k != i]
                sims_f = [float(s.detach()) for s in sims]
                g = sum(math.exp(s / tau) for s in sims_f) / len(sims)
                s_i = (1 - hp['gamma']) * self.s[idx] + hp['gamma'] * g if self.seen[idx] else g
                p = [math.exp(s / tau) / s_i for s in sims_f]
                pos = torch.dot(views[v][i], views[1 - v][i])
                total = total + sum(pj * s for pj, s in zip(p, sims)) / len(sims) - pos
                s_new[i][v] = s_i
                g_tau[i][v] = (math.log(s_i) + hp['rho']
                               - sum(pj * s / tau for pj, s in zip(p, sims_f)) / len(sims))
        for i, idx in enumerate(index):
            self.s[idx] = 0.5 * (s_new[i][0] + s_new[i][1])
            grad = min(max(0.5 * (g_tau[i][0] + g_tau[i][1]), -hp['clip']), hp['clip'])
            self.u[idx] = (1 - hp['beta_u']) * self.u[idx] + hp['beta_u'] * grad
            self.tau[idx] = min(max(self.tau[idx] - hp['eta'] * self.u[idx], hp['tau_min']),
                                hp['tau_max'])
            self.seen[idx] = True
        return total / n


def test_two_steps_match_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    num = 7
    ours = ISogCLRLoss(num, **HP).double()
    ours.tau.fill_(HP['tau_init'])  # buffers start in float32; 0.1 is not exact there
    ref = LoopISogCLR(num, **HP)
    for index in ([0, 3, 5, 6], [5, 1, 0, 2]):  # the second batch revisits 0 and 5
        z_a, z_b = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
        a, b = double_leaves(z_a, z_b), double_leaves(z_a, z_b)
        la = ours(*a, torch.tensor(index))
        lb = ref.step(*b, index)
        torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
        for x, y in zip(torch.autograd.grad(la, a), torch.autograd.grad(lb, b)):
            torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10)
        for name in ('s', 'tau', 'u'):
            torch.testing.assert_close(getattr(ours, name),
                                       torch.tensor(getattr(ref, name), dtype=torch.float64),
                                       rtol=1e-9, atol=1e-12, msg=lambda m: f'{name}: {m}')
        assert ours.seen.tolist() == ref.seen
    assert float(ours.tau[4]) == 0.1 and not bool(ours.seen[4])  # never visited
    assert not torch.allclose(ours.tau[[0, 5]], torch.full((2,), 0.1, dtype=torch.float64))


def dro_objective(z_a, z_b, tau: torch.Tensor) -> torch.Tensor:
    """The KL-DRO objective with fixed temperatures, mean over samples, summed over views:
    tau_i log mean_{j in S_i^-} exp((s_ij - s_ii^+) / tau_i), written with logsumexp."""
    n = z_a.shape[0]
    z = unit(torch.cat([z_a, z_b]))
    sim = z @ z.T
    t = tau.repeat(2)
    total = z_a.new_zeros(())
    for r in range(2 * n):
        keep = [c for c in range(2 * n) if c % n != r % n]
        pos = sim[r, (r + n) % (2 * n)]
        total = total + t[r] * (torch.logsumexp((sim[r, keep] - pos) / t[r], 0)
                                - math.log(len(keep)))
    return total / n


def test_surrogate_gradient_is_the_dro_objective_gradient() -> None:
    # On a first visit s_i is the exact batch mean, so the detached weights are the softmax
    # over negatives and the surrogate's gradient equals the objective's (fixed tau).
    loss = ISogCLRLoss(5, **HP).double()
    tau = torch.tensor([0.1, 0.3, 0.07], dtype=torch.float64)
    index = torch.tensor([4, 0, 2])
    loss.tau[index] = tau
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    a, b = double_leaves(*z), double_leaves(*z)
    ga = torch.autograd.grad(loss.eval()(*a, index), a)
    gb = torch.autograd.grad(dro_objective(*b, tau), b)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)


def test_eval_mode_keeps_state() -> None:
    loss = ISogCLRLoss(5, **HP).eval()
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    loss(torch.randn(3, 4), torch.randn(3, 4), torch.tensor([4, 0, 2]))
    for k, v in loss.state_dict().items():
        assert torch.equal(v, before[k]), k
    loss.train()(torch.randn(3, 4), torch.randn(3, 4), torch.tensor([4, 0, 2]))
    assert not torch.equal(loss.tau, before['tau'])


def test_temperatures_stay_clamped_and_are_saved() -> None:
    loss = ISogCLRLoss(6, **{**HP, 'eta': 100.0})
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        loss(torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.arange(6))
    assert bool(((loss.tau == 0.05) | (loss.tau == 1.0)).all())
    assert {'s', 'tau', 'u', 'seen'} <= set(loss.state_dict())


def test_errors_name_the_argument() -> None:
    loss = ISogCLRLoss(4)
    z = torch.randn(3, 2)
    with pytest.raises(ValueError, match='index has duplicate'):
        loss(z, z, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r'index values must lie in \[0, 4\)'):
        loss(z, z, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match=r'index must be a \(3,\) long tensor'):
        loss(z, z, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match='z_a holds a batch of 1'):
        loss(z[:1], z[:1], torch.tensor([0]))
    with pytest.raises(ValueError, match='tau_min <= tau_init <= tau_max'):
        ISogCLRLoss(4, tau_init=2.0)
