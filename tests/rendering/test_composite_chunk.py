"""The compositing step's hand-written backward against plain autograd, and gradcheck."""
from __future__ import annotations

import torch

from geo3d.rendering.composite_chunk import composite_chunk
from geo3d.rendering.torch_rasterizer import _tile_local_monomials

F64 = torch.float64
TS = 4  # 4x4 tiles: P = 16 pixels


def _inputs(a: int, k: int, seed: int = 0, opaque: bool = True) -> tuple[torch.Tensor, ...]:
    """A tiles x k Gaussians that overlap the tile, some opaque enough to stop pixels."""
    g = torch.Generator().manual_seed(seed)
    mx, my = (torch.rand(a, k, generator=g, dtype=F64) * 5 - 2.5 for _ in range(2))
    sx, sy = (0.8 + 1.5 * torch.rand(a, k, generator=g, dtype=F64) for _ in range(2))
    if opaque:  # every third Gaussian broad and fully opaque: alpha ~0.9-0.999 over the tile
        sx[:, 1::3], sy[:, 1::3] = 5.0, 6.0
    rho = 0.6 * (torch.rand(a, k, generator=g, dtype=F64) - 0.5)
    det = (sx * sy) ** 2 * (1 - rho ** 2)
    ca, cb, cc = sy ** 2 / det, -rho * sx * sy / det, sx ** 2 / det  # inverse covariance
    neg_coef = torch.stack([-0.5 * ca, -cb, -0.5 * cc, ca * mx + cb * my, cb * mx + cc * my,
                            -(0.5 * ca * mx * mx + cb * mx * my + 0.5 * cc * my * my)], -1)
    opac = 0.2 + 0.6 * torch.rand(a, k, generator=g, dtype=F64)
    if opaque:
        opac[:, 1::3] = 1.0
    live = 0.3 + 0.7 * torch.rand(a, TS * TS, generator=g, dtype=F64)
    live[0, :3] = 0.0  # pixels that stopped in an earlier step
    feats = torch.rand(a, k, 4, generator=g, dtype=F64)
    return neg_coef, opac, live, feats


def _reference(neg_coef, opac, live, feats, phi_t):
    """Plain-autograd, one-Gaussian-at-a-time version of the same rule."""
    sigma_neg = neg_coef @ phi_t  # (A, k, P)
    T = live
    stopped = live == 0
    out = torch.zeros(live.shape + (feats.shape[-1],), dtype=live.dtype)
    for i in range(neg_coef.shape[1]):
        alpha = torch.clamp(opac[:, i, None] * torch.exp(sigma_neg[:, i]), max=0.999)
        valid = (alpha >= 1 / 255) & ~stopped
        nxt = T * (1 - alpha)
        stop = valid & (nxt <= 1e-4)
        use = valid & ~stop
        stopped = stopped | stop
        out = out + torch.where(use, alpha * T, 0.0)[..., None] * feats[:, i, None, :]
        T = torch.where(use, nxt, T)
    return out, torch.where(live == 0, 0.0, T), stopped


def test_matches_plain_autograd_values_and_gradients() -> None:
    phi_t = _tile_local_monomials(TS, F64, torch.device('cpu')).T
    inputs = [t.requires_grad_() for t in _inputs(3, 9)]
    out, t_out, stopped = composite_chunk(*inputs, phi_t)
    ref_out, ref_t, ref_stopped = _reference(*inputs, phi_t)
    assert stopped.sum() > int((inputs[2] == 0).sum()) + 3  # some pixels stop in this step
    assert torch.equal(stopped, ref_stopped)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(t_out, ref_t)
    g = torch.Generator().manual_seed(1)
    w_out = torch.randn(out.shape, generator=g, dtype=F64)
    w_t = torch.randn(t_out.shape, generator=g, dtype=F64)
    grads = list(torch.autograd.grad((out * w_out).sum() + (t_out * w_t).sum(), inputs))
    ref = torch.autograd.grad((ref_out * w_out).sum() + (ref_t * w_t).sum(), inputs)
    # at live == 0 (a stopped pixel) the step is discontinuous in live; the rasterizer masks
    # both the input and the output of such pixels, so their live gradient is not compared
    grads[2][inputs[2] == 0] = 0.0
    for name, a, b in zip(('neg_coef', 'opac', 'live', 'features'), grads, ref):
        assert b.abs().sum() > 0, name
        torch.testing.assert_close(a, b, msg=f'gradient of {name}')


def test_gradcheck() -> None:
    phi_t = _tile_local_monomials(TS, F64, torch.device('cpu')).T
    inputs = tuple(t.requires_grad_() for t in _inputs(2, 5, seed=2))

    def fn(*args):
        out, t_out, _ = composite_chunk(*args, phi_t)
        return out, t_out

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_padding_slots_and_empty_live_pixels_do_nothing() -> None:
    phi_t = _tile_local_monomials(TS, F64, torch.device('cpu')).T
    neg_coef, opac, live, feats = _inputs(2, 6, seed=3, opaque=False)
    opac_pad = opac.clone()
    opac_pad[:, 3:] = 0.0  # padded slots carry opacity 0
    a = composite_chunk(neg_coef, opac_pad, live, feats, phi_t)
    b = composite_chunk(neg_coef[:, :3], opac[:, :3], live, feats[:, :3], phi_t)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    out, t_out, stopped = composite_chunk(neg_coef, opac, torch.zeros_like(live), feats, phi_t)
    assert (out == 0).all() and (t_out == 0).all() and stopped.all()
