#!/usr/bin/env python
"""Render a Gaussian2Scene (stage 2) model's Gaussians into held-out frames, next to the real ones.

``python tools/render_gaussians.py CONFIG CHECKPOINT|none --out PNG [--scenes 2] [--frames 2]
[--split val] [--scale S] [--device cpu|cuda] [--cfg-options k=v ...]``

The frames are the config's ``val_dataloader`` dataset (held-out views, ``frame_set='holdout'``)
with ``--frames`` fixed frames of each of the first ``--scenes`` scenes (``--split`` overrides
the split). Every row of the PNG is one frame: rendered RGB | real RGB | rendered depth | real
depth (both depths coloured with one range per row, ``[0, max real depth]``, black = no
measurement / nothing rendered), with the scene, frame id and PSNR (over the pixels with a
measured depth, as :class:`geo3d.evaluation.RenderMetric`) written above it. ``CHECKPOINT``
``none`` renders the randomly initialised model (the starting point). The PSNR of every frame
and their mean are printed.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import geo3d.datasets  # noqa: E402,F401
import geo3d.models  # noqa: E402,F401
from geo3d.datasets.scannet_frames import scannet_frames_collate  # noqa: E402
from geo3d.evaluation.render import psnr  # noqa: E402
from geo3d.registry import DATASETS, MODELS  # noqa: E402
from geo3d.utils.checkpoint import load_checkpoint_file  # noqa: E402
from geo3d.utils.errors import DataNotFoundError  # noqa: E402
from geo3d.utils.io import atomic_write_bytes  # noqa: E402

HEADER = 18   # pixels of the text line above every row
COLUMNS = ('rendered RGB', 'real RGB', 'rendered depth', 'real depth')


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Render Gaussian2Scene Gaussians vs real frames')
    p.add_argument('config', help='stage-2 config (a Gaussian2Scene model)')
    p.add_argument('checkpoint', help="checkpoint of that config, or 'none' (random init)")
    p.add_argument('--out', required=True, help='output PNG path')
    p.add_argument('--scenes', type=int, default=2, help='scenes to render (first of the split)')
    p.add_argument('--frames', type=int, default=2, help='held-out frames per scene')
    p.add_argument('--split', default=None, help='dataset split (default: the val split)')
    p.add_argument('--scale', type=int, default=0,
                   help='integer upscaling of the images (0: up to about 160 px wide)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = p.parse_args(argv)
    if args.scenes < 1 or args.frames < 1:
        p.error('--scenes and --frames must be >= 1')
    if args.scale < 0:
        p.error('--scale must be >= 0')
    return args


def load_model(cfg: Config, checkpoint: str, device: str) -> torch.nn.Module:
    """The config's model with the checkpoint's weights (strict), in eval mode."""
    model = MODELS.build(copy.deepcopy(cfg.model))
    if not hasattr(model, 'render') or not hasattr(model, 'predict'):
        raise SystemExit(f'error: the model of {cfg.filename} is {type(model).__name__}, not a '
                         'Gaussian2Scene (stage-2) model')
    if checkpoint.lower() != 'none':
        if not osp.isfile(checkpoint):
            raise SystemExit(f'error: checkpoint {checkpoint} does not exist')
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SystemExit(f'error: {checkpoint} does not fit the model of {cfg.filename}: '
                             f'missing keys {sorted(missing)[:8]}, unexpected keys '
                             f'{sorted(unexpected)[:8]} (a stage-1 checkpoint? train stage 2 '
                             'with load_from=it first)')
    return model.to(device).eval()


def colour_depth(depth: np.ndarray, vmax: float) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB (turbo colour map), black where depth <= 0."""
    norm = np.clip(depth / max(vmax, 1e-6), 0.0, 1.0)
    rgb = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    rgb = rgb.copy()
    rgb[depth <= 0] = 0
    return rgb


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def frame_row(pred: dict, f: int, scale: int) -> tuple[np.ndarray, float]:
    """One PNG row (header + 4 panels) for frame ``f`` of a prediction, and its PSNR."""
    gt_d = pred['gt_depth'][f, 0].numpy()
    pr_d = pred['pred_depth'][f, 0].numpy() * (pred['alpha'][f, 0].numpy() > 0.5)
    mask = pred['gt_depth'][f:f + 1] > 0
    value = float(psnr(pred['pred_rgb'][f:f + 1], pred['gt_rgb'][f:f + 1], mask)[0])
    vmax = float(gt_d.max()) if gt_d.max() > 0 else float(max(pr_d.max(), 1.0))
    panels = [to_uint8(pred['pred_rgb'][f]), to_uint8(pred['gt_rgb'][f]),
              colour_depth(pr_d, vmax), colour_depth(gt_d, vmax)]
    h, w = panels[0].shape[:2]
    gap = 2
    row = np.full((h * scale + HEADER, 4 * w * scale + 3 * gap, 3), 255, np.uint8)
    for i, p in enumerate(panels):
        big = cv2.resize(p, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        x0 = i * (w * scale + gap)
        row[HEADER:, x0:x0 + w * scale] = big
    fid = int(pred['frame_ids'][f]) if 'frame_ids' in pred else f
    text = f"{pred['name']} frame {fid}  PSNR {value:.2f} dB  depth 0-{vmax:.1f} m"
    cv2.putText(row, text, (3, HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return row, value


def title_row(width: int, panel_w: int) -> np.ndarray:
    row = np.full((HEADER, width, 3), 255, np.uint8)
    for i, name in enumerate(COLUMNS):
        cv2.putText(row, name, (i * (panel_w + 2) + 3, HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 128), 1, cv2.LINE_AA)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if not loader:
        raise SystemExit(f'error: {args.config} has no val_dataloader to take frames from')
    ds_cfg = copy.deepcopy(loader['dataset'])
    ds_cfg.update(frames_per_sample=args.frames, random_frames=False, test_mode=True)
    if args.split is not None:
        ds_cfg['split'] = args.split
    try:
        dataset = DATASETS.build(ds_cfg)
    except DataNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    model = load_model(cfg, args.checkpoint, args.device)
    rows, values = [], []
    for i in range(min(args.scenes, len(dataset))):
        batch = scannet_frames_collate([dataset[i]])
        with torch.no_grad():
            data = model.data_preprocessor(batch, False)
            pred = model(**data, mode='predict')[0]
        w = pred['pred_rgb'].shape[-1]
        scale = args.scale or max(1, 160 // w)
        for f in range(pred['pred_rgb'].shape[0]):
            row, value = frame_row(pred, f, scale)
            rows.append(row)
            values.append(value)
            print(f"{pred['name']} frame {f}: PSNR {value:.2f} dB")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    panel_w = (rows[0].shape[1] - 6) // 4
    grid = np.concatenate([title_row(width, panel_w)] + rows, 0)
    ok, buf = cv2.imencode('.png', grid[..., ::-1])
    if not ok:
        raise SystemExit(f'error: could not encode {args.out}')
    atomic_write_bytes(args.out, buf.tobytes())
    print(f'mean PSNR {float(np.mean(values)):.2f} dB over {len(values)} frames; wrote '
          f'{args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
