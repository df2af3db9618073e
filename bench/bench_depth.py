#!/usr/bin/env python
"""MonoDepth (Monodepth2, ResNet-18) speed: video demo throughput and training steps.

    .venv/bin/python bench/bench_depth.py [--video data/kitti_raw_demo/demo_video.mp4]
        [--config CONFIG --checkpoint CKPT] [--frames 30] [--devices cpu cuda]
        [--train-batch-cpu 2] [--train-batch-cuda 12] [--repeats 3] [--skip-train]

Video demo (``geo3d.apis.render_depth_video``, what ``tools/demo_depth_video.py`` runs): decode
-> resize to the network size -> depth network -> resize back -> colour map -> side-by-side
frame -> H.264/MPEG-4 encode, for every frame, batch 1; FPS = frames / wall time after one
warm-up pass over 3 frames. Sizes: 640x192 (Monodepth2's) and the video's native size rounded
to multiples of 32. ``net FPS`` is the depth network alone on one frame at that size (median
over ``repeats`` x 10 calls). When ``--video`` is missing a 1242x376 clip of smooth random
frames is made (KITTI's size, height made even for the codec).

Training step at 640x192 (frames 0, -1, 1; 4 scales; Adam): median wall time of forward +
backward + optimizer step over ``repeats`` steps after 1 warm-up step, on random images.
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (tensors); on CPU the process RSS
sampled every 2 ms above the RSS before the steps (an estimate, counts allocator slack).
Weights do not change the speed: without ``--checkpoint`` the model is randomly initialised.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_spunet import _RssPeak as RssPeak  # noqa: E402  (one RSS sampler for all benches)
from geo3d.apis import DepthPredictor, render_depth_video, round_size, video_info  # noqa: E402
from geo3d.apis.video import VideoWriter  # noqa: E402
from geo3d.models.depth.monodepth import MonoDepth  # noqa: E402

MONODEPTH2_SIZE = (192, 640)
DEFAULT_VIDEO = 'data/kitti_raw_demo/demo_video.mp4'
MODEL_CFG = dict(type='MonoDepth')


def synthetic_video(path: str, frames: int, height: int = 376, width: int = 1242) -> None:
    """Smooth random frames (a codec sees them like camera footage more than noise); KITTI's
    1242x375 with the height made even (yuv420p)."""
    import cv2
    rng = np.random.default_rng(0)
    with VideoWriter(path, fps=10) as w:
        for _ in range(frames):
            small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
            w.write(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def predictor(args: argparse.Namespace, device: str, size: tuple[int, int]) -> DepthPredictor:
    if args.checkpoint:
        return DepthPredictor(args.config, args.checkpoint, device=device, size=size)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "randomly initialised" is intended here
        return DepthPredictor({'model': MODEL_CFG}, None, device=device, size=size)


def network_fps(pred: DepthPredictor, size: tuple[int, int], device: str, repeats: int
                ) -> float:
    x = torch.rand(1, 3, *size, device=device)
    pred.predict_tensor(x)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(10):
            pred.predict_tensor(x)
        _sync(device)
        times.append((time.perf_counter() - t0) / 10)
    return 1.0 / statistics.median(times)


def bench_video(args: argparse.Namespace, video: str, device: str) -> list[dict[str, Any]]:
    info = video_info(video)
    sizes = [('640x192', MONODEPTH2_SIZE),
             (f'native {info.width}x{info.height}', round_size(info.height, info.width))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in sizes:
            pred = predictor(args, device, size)
            out = osp.join(tmp, 'out.mp4')
            render_depth_video(pred, video, out, max_frames=3, progress=False)  # warm-up
            _sync(device)
            stats = render_depth_video(pred, video, out, max_frames=args.frames,
                                       progress=False)
            rows.append(dict(device=device, size=name, net=f'{size[1]}x{size[0]}',
                             frames=stats.frames, fps=stats.fps,
                             net_fps=network_fps(pred, size, device, args.repeats)))
    return rows


def bench_train_step(device: str, batch: int, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    h, w = MONODEPTH2_SIZE
    model = MonoDepth().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    color = torch.rand(batch, 3, 3, h, w, device=device)
    pyramid = [color] + [torch.nn.functional.interpolate(
        color.flatten(0, 1), scale_factor=0.5 ** s, mode='area').view(
            batch, 3, 3, h // 2 ** s, w // 2 ** s) for s in (1, 2, 3)]
    K = torch.tensor([[0.58 * w, 0, 0.5 * w, 0], [0, 1.92 * h, 0.5 * h, 0], [0, 0, 1, 0],
                      [0, 0, 0, 1]], device=device)
    Ks = torch.stack([K * torch.tensor([[2.0 ** -s] * 4] * 2 + [[1.0] * 4] * 2, device=device)
                      for s in range(4)]).expand(batch, 4, 4, 4)
    inputs = {'color': pyramid, 'color_aug': pyramid, 'K': Ks, 'inv_K': torch.linalg.inv(Ks)}

    def step() -> None:
        loss = model(inputs, None, mode='loss')['loss']
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times: list[float] = []

    def run(fn: Callable[[], None]) -> None:
        fn()  # warm-up
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)

    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        run(step)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        with RssPeak() as rss:
            run(step)
        peak = rss.delta_mib
    return dict(device=device, batch=batch, step_s=statistics.median(times), peak_mib=peak)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--video', default=DEFAULT_VIDEO)
    p.add_argument('--config', default=None, help='config of --checkpoint')
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--frames', type=int, default=30, help='timed frames per size')
    p.add_argument('--devices', nargs='+', default=None, help='default: cpu, and cuda if any')
    p.add_argument('--train-batch-cpu', type=int, default=2)
    p.add_argument('--train-batch-cuda', type=int, default=12)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--skip-train', action='store_true')
    args = p.parse_args()
    if args.checkpoint and not args.config:
        p.error('--checkpoint needs --config (or none for a converted checkpoint)')
    if args.config and args.config.lower() == 'none':
        args.config = None
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    for d in devices:
        if d.startswith('cuda') and not torch.cuda.is_available():
            p.error(f'{d}: CUDA is not available')

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if not osp.isfile(video):
            video = osp.join(tmp, 'synthetic_kitti_size.mp4')
            print(f'{args.video} not found: timing a synthetic 1242x376 clip (make it with '
                  f'`tools/make_demo_data.py --kind kitti`)')
            synthetic_video(video, args.frames + 3)
        info = video_info(video)
        print(f'video demo: {video} ({info.width}x{info.height}), MonoDepth ResNet-18, batch 1, '
              f'torch threads {torch.get_num_threads()}')
        print(f'{"device":>7} {"size":>18} {"network":>9} {"frames":>7} {"demo FPS":>9} '
              f'{"net FPS":>8}')
        for d in devices:
            for r in bench_video(args, video, d):
                print(f'{r["device"]:>7} {r["size"]:>18} {r["net"]:>9} {r["frames"]:>7} '
                      f'{r["fps"]:>9.1f} {r["net_fps"]:>8.1f}', flush=True)
    if args.skip_train:
        return
    print('\ntraining step at 640x192 (frames 0,-1,1; 4 scales; Adam), median over '
          f'{args.repeats} steps')
    print(f'{"device":>7} {"batch":>6} {"step s":>8} {"img/s":>7} {"peak MiB":>9}')
    for d in devices:
        batch = args.train_batch_cuda if d.startswith('cuda') else args.train_batch_cpu
        r = bench_train_step(d, batch, args.repeats)
        print(f'{r["device"]:>7} {r["batch"]:>6} {r["step_s"]:>8.3f} '
              f'{r["batch"] / r["step_s"]:>7.1f} {r["peak_mib"]:>9.0f}', flush=True)
    print('peak MiB: CUDA = max_memory_allocated; CPU = RSS peak above the pre-run RSS')


if __name__ == '__main__':
    main()
