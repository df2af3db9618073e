#!/usr/bin/env python
"""MonoDepth (Monodepth2, ResNet-18) speed: video demo throughput and training steps.

    .venv/bin/python bench/bench_depth.py [--video data/kitti_raw_demo/demo_video.mp4]
        [--config CONFIG --checkpoint CKPT] [--frames 30] [--devices cpu cuda]
        [--train-batch-cpu 2] [--train-batch-cuda 12] [--repeats 3] [--skip-train]
        [--skip-video] [--models all|monodepth robust_depth manydepth prodepth_r18 prodepth_lite8m]
        [--model-batches 2 4] [--model-repeats 3] [--skip-models]

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

Methods at 640x192 (``--models``; MonoDepth, RobustDepth, ManyDepth, ProDepth with ResNet-18
and with Lite-Mono-8M encoders), each built from its KITTI config (``configs/*_kitti.py``,
``pretrained=False``, no teacher checkpoint, random weights) with a synthetic batch (frames
0, -1, 1; 4 scales): training step = mmengine's ``model.train_step`` (data preprocessor,
forward, backward, Adam step: what the runner runs) at each of ``--model-batches``, median
over ``--model-repeats`` steps after 1 warm-up step, peak memory as above; inference FPS =
``DepthPredictor.predict_tensor`` on one 640x192 frame (multi-frame models with the previous
frame: pose net + cost volume, ProDepth also the teacher and its uncertainty head), median over
``--model-repeats`` x 3 calls. The config's training phase is what is timed: ManyDepth trains
its teacher jointly (before ``FreezeTeacherHook``), ProDepth's teacher is frozen from the
start, RobustDepth draws a random corruption per sample (its step time varies).
CUDA rows are printed as "not run" without a GPU.
"""
from __future__ import annotations

import argparse
import copy
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
from geo3d.apis.depth_predictor import offline_model_config  # noqa: E402
from geo3d.apis.video import VideoWriter  # noqa: E402
from geo3d.models.depth.monodepth import MonoDepth  # noqa: E402

MONODEPTH2_SIZE = (192, 640)
DEFAULT_VIDEO = 'data/kitti_raw_demo/demo_video.mp4'
MODEL_CFG = dict(type='MonoDepth')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
R18 = dict(type='DepthResNetEncoder', num_layers=18)


def _prodepth_r18(model: dict) -> dict:
    """ProDepth with ResNet-18 everywhere (teacher, matching and auxiliary encoders) and
    Monodepth2's 4 scales, instead of the config's Lite-Mono-8M."""
    model = copy.deepcopy(model)
    model['teacher'].update(encoder=dict(R18), scales=(0, 1, 2, 3))
    model['encoder']['encoder'] = dict(R18)
    model['aux_depth']['encoder'] = dict(R18)
    model['scales'] = (0, 1, 2, 3)
    return model


#: --models name -> (table label, KITTI config, change of the config's model)
METHODS: dict[str, tuple[str, str, Callable[[dict], dict] | None]] = {
    'monodepth': ('MonoDepth R18', 'configs/monodepth_kitti.py', None),
    'robust_depth': ('RobustDepth R18', 'configs/robust_depth_kitti.py', None),
    'manydepth': ('ManyDepth R18', 'configs/manydepth_kitti.py', None),
    'prodepth_r18': ('ProDepth R18', 'configs/prodepth_kitti.py', _prodepth_r18),
    'prodepth_lite8m': ('ProDepth Lite-Mono-8M', 'configs/prodepth_kitti.py', None),
}


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


def method_model_config(name: str) -> dict:
    """The model config of a :data:`METHODS` entry, reading no weights files."""
    from mmengine.config import Config
    _, path, change = METHODS[name]
    model = offline_model_config(Config.fromfile(osp.join(ROOT, path)).to_dict()['model'])
    return change(model) if change is not None else model


def synthetic_batch(batch: int, device: str, frames: int = 3, scales: int = 4
                    ) -> dict[str, Any]:
    """A KITTIRawDataset-style batch at 640x192 of random images: ``color`` / ``color_aug``
    pyramids (B, F, 3, H_s, W_s), Monodepth2's KITTI ``K`` / ``inv_K`` per scale."""
    h, w = MONODEPTH2_SIZE
    color = torch.rand(batch, frames, 3, h, w, device=device)
    pyramid = [color] + [torch.nn.functional.interpolate(
        color.flatten(0, 1), scale_factor=0.5 ** s, mode='area').view(
            batch, frames, 3, h // 2 ** s, w // 2 ** s) for s in range(1, scales)]
    K = torch.tensor([[0.58 * w, 0, 0.5 * w, 0], [0, 1.92 * h, 0.5 * h, 0], [0, 0, 1, 0],
                      [0, 0, 0, 1]], device=device)
    Ks = torch.stack([K * torch.tensor([[2.0 ** -s] * 4] * 2 + [[1.0] * 4] * 2, device=device)
                      for s in range(scales)]).expand(batch, scales, 4, 4)
    return {'color': pyramid, 'color_aug': pyramid, 'K': Ks, 'inv_K': torch.linalg.inv(Ks)}


def _measure(fn: Callable[[], None], device: str, repeats: int
             ) -> tuple[float, float, float]:
    """(median wall seconds of ``fn`` after one warm-up call, median process CPU seconds,
    peak MiB) on ``device``. With one thread on a shared machine the CPU seconds are the
    steadier number (the wall time includes waiting for other processes)."""
    times: list[float] = []
    cpu: list[float] = []

    def run() -> None:
        fn()  # warm-up
        for _ in range(repeats):
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)

    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        run()
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        with RssPeak() as rss:
            run()
        peak = rss.delta_mib
    return statistics.median(times), statistics.median(cpu), peak


def bench_method_train(name: str, device: str, batch: int, repeats: int) -> dict[str, Any]:
    """One method's training step (``train_step``: preprocess, forward, backward, Adam)."""
    from mmengine.optim import OptimWrapper

    from geo3d.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(method_model_config(name)).to(device).train()
    optim = OptimWrapper(torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4))
    data = {'inputs': synthetic_batch(batch, device), 'data_samples': None}
    step_s, cpu_s, peak = _measure(lambda: model.train_step(data, optim), device, repeats)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return dict(step_s=step_s, cpu_s=cpu_s, peak_mib=peak, params_m=params)


def bench_method_infer(name: str, device: str, repeats: int) -> tuple[float, float]:
    """Inference FPS of one method on one 640x192 frame (with its previous frame), from the
    wall time and from the process CPU time."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "randomly initialised" is intended here
        pred = DepthPredictor({'model': method_model_config(name)}, None, device=device,
                              size=MONODEPTH2_SIZE)
    x = torch.rand(1, 3, *MONODEPTH2_SIZE, device=device)
    prev = torch.rand(1, 3, *MONODEPTH2_SIZE, device=device) if pred.multi_frame else None
    seconds, cpu, _ = _measure(lambda: pred.predict_tensor(x, prev), device, repeats * 3)
    return 1.0 / seconds, 1.0 / cpu


def bench_methods(args: argparse.Namespace, devices: list[str]) -> None:
    names = list(METHODS) if args.models == ['all'] else args.models
    print(f'\nmethods at 640x192, random weights from configs/*_kitti.py; train step = '
          f'train_step (Adam), median of {args.model_repeats}; torch threads '
          f'{torch.get_num_threads()}')
    print(f'{"method":>22} {"params M":>9} {"device":>7} {"batch":>6} {"step s":>8} '
          f'{"cpu s":>8} {"img/s":>7} {"peak MiB":>9} {"infer FPS":>10} {"cpu FPS":>8}')
    shown = devices + ([] if any(d.startswith('cuda') for d in devices) else ['cuda'])
    for name in names:
        label = METHODS[name][0]
        for d in shown:
            if d.startswith('cuda') and not torch.cuda.is_available():
                print(f'{label:>22} {"":>9} {d:>7} {"":>6} {"not run (no GPU)":>17}',
                      flush=True)
                continue
            fps, cpu_fps = bench_method_infer(name, d, args.model_repeats)
            for b in args.model_batches:
                r = bench_method_train(name, d, b, args.model_repeats)
                print(f'{label:>22} {r["params_m"]:>9.1f} {d:>7} {b:>6} {r["step_s"]:>8.2f} '
                      f'{r["cpu_s"]:>8.2f} {b / r["step_s"]:>7.2f} {r["peak_mib"]:>9.0f} '
                      f'{fps:>10.2f} {cpu_fps:>8.2f}', flush=True)
    print('params M: all parameters (ManyDepth/ProDepth: teacher and pose net included); '
          'step s / infer FPS: wall time; cpu s / cpu FPS: process CPU time (CUDA: host '
          'time); infer: batch 1, network only')


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
    p.add_argument('--skip-video', action='store_true')
    p.add_argument('--models', nargs='+', default=['all'], choices=['all', *METHODS],
                   help='methods of the 640x192 table (default all)')
    p.add_argument('--model-batches', type=int, nargs='+', default=[2, 4])
    p.add_argument('--model-repeats', type=int, default=3)
    p.add_argument('--skip-models', action='store_true')
    args = p.parse_args()
    if args.checkpoint and not args.config:
        p.error('--checkpoint needs --config (or none for a converted checkpoint)')
    if args.config and args.config.lower() == 'none':
        args.config = None
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    for d in devices:
        if d.startswith('cuda') and not torch.cuda.is_available():
            p.error(f'{d}: CUDA is not available')

    if not args.skip_video:
        video_table(args, devices)
    if not args.skip_train:
        train_table(args, devices)
    if not args.skip_models:
        bench_methods(args, devices)


def video_table(args: argparse.Namespace, devices: list[str]) -> None:
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


def train_table(args: argparse.Namespace, devices: list[str]) -> None:
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
