"""gsplat's CUDA rasterizer against geo3d's PyTorch path on the same scene (needs a GPU).

The first call JIT-compiles gsplat's CUDA extension (about 1.5 min on an H100). Tolerances are
of gsplat's own CUDA-vs-PyTorch tests: float32 with fast-math ``exp`` on the GPU, and a few
pixels may flip at the 1/255 skip or the 1e-4 stop, so images are compared per pixel with a
small budget of outliers and gradients by relative norm.
"""
from __future__ import annotations

import pytest
import torch

from geo3d.rendering import gsplat_cuda_available, rasterize
from tests.rendering.reference import intrinsics, look_at, random_scene

pytestmark = pytest.mark.gpu

W, H = 96, 72


@pytest.fixture(scope='module')
def gsplat_ready() -> None:
    if not torch.cuda.is_available():
        pytest.skip('needs a CUDA device')
    if not gsplat_cuda_available():
        pytest.skip('gsplat CUDA extension unusable here')


def _scene(n: int = 400):
    scene = {k: v.float().cuda() for k, v in random_scene(n, seed=11, opaque_share=0.4,
                                                           max_scale=0.3).items()}
    vms = torch.stack([look_at([0.3, -3.0, 0.5], [0.0, 0.0, 0.0]),
                       look_at([-2.2, -2.0, 1.0], [0.1, 0.0, 0.0])]).float().cuda()
    Ks = intrinsics(W, H, 60.0).float().cuda().expand(2, 3, 3).contiguous()
    return scene, vms, Ks


def _close_images(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-4,
                  outliers: float = 0.005, max_err: float = 2e-2) -> None:
    err = (a - b).abs()
    assert err.max() < max_err, f'max error {err.max():.3g}'
    assert (err > atol).float().mean() < outliers, f'{(err > atol).float().mean():.3%} > {atol}'


@pytest.mark.parametrize('packed', [True, False])
def test_gsplat_and_torch_paths_agree(gsplat_ready: None, packed: bool) -> None:
    scene, vms, Ks = _scene()
    bg = torch.tensor([[0.1, 0.2, 0.3], [0.0, 0.5, 1.0]], device='cuda')
    outs, grads = {}, {}
    for backend in ('gsplat', 'torch'):
        params = {k: v.clone().requires_grad_() for k, v in scene.items()}
        out = rasterize(**params, viewmats=vms, Ks=Ks, width=W, height=H, backgrounds=bg,
                        backend=backend, packed=packed)
        assert out.meta['backend'] == backend
        g = torch.Generator(device='cuda').manual_seed(0)
        loss = ((out.rgb * torch.randn(out.rgb.shape, device='cuda', generator=g)).sum()
                + (out.depth * torch.randn(out.depth.shape, device='cuda', generator=g)).sum()
                + (out.alpha * torch.randn(out.alpha.shape, device='cuda', generator=g)).sum())
        grads[backend] = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        outs[backend] = out
    a, b = outs['gsplat'], outs['torch']
    assert (a.alpha > 0.9).float().mean() > 0.2  # a scene with content
    _close_images(a.rgb, b.rgb)
    _close_images(a.alpha, b.alpha)
    hit = (a.alpha > 0.5) & (b.alpha > 0.5)
    _close_images(a.depth[hit] / 4.0, b.depth[hit] / 4.0)  # depths ~2-4 m: relative ~1e-4
    # same visible pairs, same pixel boxes up to rounding
    ka = a.meta['camera_ids'] * 10 ** 6 + a.meta['gaussian_ids']
    kb = b.meta['camera_ids'] * 10 ** 6 + b.meta['gaussian_ids']
    assert torch.equal(ka.sort().values, kb.sort().values)
    ra, rb = a.meta['radii'][ka.argsort()], b.meta['radii'][kb.argsort()]
    assert (ra - rb).abs().max() <= 1
    for name in scene:
        ga, gb = grads['gsplat'][name], grads['torch'][name]
        rel = (ga - gb).norm() / gb.norm()
        assert gb.norm() > 0 and rel < 2e-2, f'{name}: relative gradient error {rel:.3g}'


def test_auto_backend_on_cuda(gsplat_ready: None) -> None:
    scene, vms, Ks = _scene(50)
    out32 = rasterize(**scene, viewmats=vms, Ks=Ks, width=W, height=H)
    assert out32.meta['backend'] == 'gsplat' and out32.rgb.is_cuda
    out64 = rasterize(**{k: v.double() for k, v in scene.items()}, viewmats=vms.double(),
                      Ks=Ks.double(), width=W, height=H)
    assert out64.meta['backend'] == 'torch'  # gsplat's kernels are float32 only
    with pytest.raises(RuntimeError, match='float32'):
        rasterize(**{k: v.double() for k, v in scene.items()}, viewmats=vms.double(),
                  Ks=Ks.double(), width=W, height=H, backend='gsplat')
