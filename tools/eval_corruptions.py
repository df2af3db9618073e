#!/usr/bin/env python
"""Evaluate a depth checkpoint on the test split clean and under corruptions (Robust-Depth's
"robust test"), all rows through the config's ``DepthMetric``.

Usage (from the repo root)::

    python tools/eval_corruptions.py CONFIG CHECKPOINT
        [--corruptions fog:3 rain:3 snow:3 night:3 ... rain+fog+night:3] [--severity 3]
        [--depth-source model|reference|demo] [--depth-config C --depth-checkpoint P]
        [--seed 0] [--out table.md] [--json out.json] [--device cpu] [--cfg-options ...]

Prints a table (rows: clean, then each corruption; columns: the 7 metrics, AbsRel first); the
clean row equals ``tools/test.py CONFIG CHECKPOINT``. A corruption without ``:N`` gets
``--severity``. Corruption is seeded per image (``--seed``, dataset index, frame, name).

Fog, rain and snow need metric depth of the test frames (``--depth-source``):

* ``reference``: the clean prediction of ``--depth-config``/``--depth-checkpoint`` (any depth
  model, e.g. the MonoDepth baseline), median-scaled per image to the LiDAR ground truth.
  Use the same reference for every model you compare: their corrupted inputs are then
  identical;
* ``model`` (default): the same, with the evaluated model as its own reference (convenient,
  but two models then see slightly different fog/rain/snow);
* ``demo``: the demo drives' rendered dense depth (``proj_depth_demo/``; demo data only).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_CORRUPTIONS = ('fog', 'rain', 'snow', 'night', 'dusk', 'motion_blur', 'greyscale',
                       'channel_drop', 'gaussian_noise', 'rain+fog+night')


def build_parser() -> argparse.ArgumentParser:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Depth metrics clean and under corruptions')
    p.add_argument('config', help='config file (its model, test_dataloader, test_evaluator)')
    p.add_argument('checkpoint', help='checkpoint (.pth)')
    p.add_argument('--corruptions', nargs='+', default=list(DEFAULT_CORRUPTIONS),
                   help='NAME[:SEVERITY] ... (names: fog rain snow night dusk motion_blur '
                        'linear_blur greyscale channel_drop red_only green_only blue_only '
                        'gaussian_noise; + combines, e.g. rain+fog+night:3)')
    p.add_argument('--severity', type=int, default=3, help='severity of names without :N')
    p.add_argument('--depth-source', choices=('model', 'reference', 'demo'), default='model',
                   help='metric depth for fog/rain/snow (default: the evaluated model)')
    p.add_argument('--depth-config', default=None, help='reference depth model config')
    p.add_argument('--depth-checkpoint', default=None, help='reference depth checkpoint')
    p.add_argument('--seed', type=int, default=0, help='corruption seed')
    p.add_argument('--out', default=None, help='write the markdown table here')
    p.add_argument('--json', default=None, help='write the metrics as JSON here')
    p.add_argument('--device', default='cpu', help='torch device (default cpu)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. test_dataloader.batch_size=4')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def build_model(cfg, checkpoint: str, device: str):  # (Config, ...) -> the model in eval mode
    """The config's model with the checkpoint's weights, as tools/test.py loads them."""
    from mmengine.runner import load_checkpoint

    import geo3d.utils.checkpoint  # noqa: F401  (the torch>=2.6 checkpoint loader)
    from geo3d.registry import MODELS
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    model_cfg = dict(cfg.model)
    for key in ('encoder', 'pose_encoder'):  # the checkpoint brings the weights
        if isinstance(model_cfg.get(key), dict):
            model_cfg[key] = dict(model_cfg[key], pretrained=False)
    model = MODELS.build(model_cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    return model.to(device).eval()


def depth_source_from_args(args: argparse.Namespace, model):
    from torch import Tensor

    from geo3d.evaluation.corrupted import DemoDepth, PredictedDepth
    if args.depth_source == 'demo':
        return DemoDepth()
    if args.depth_source == 'reference':
        if not (args.depth_config and args.depth_checkpoint):
            raise ValueError('--depth-source reference needs --depth-config and '
                             '--depth-checkpoint')
        from geo3d.apis import DepthPredictor
        ref = DepthPredictor(args.depth_config, args.depth_checkpoint, device=args.device)
        return PredictedDepth(lambda x: ref.predict_tensor(x)['disp'])
    if not all(hasattr(model, a) for a in ('predict_disparities', 'disp_to_depth')):
        raise ValueError(f'--depth-source model needs a model with predict_disparities '
                         f'(got {type(model).__name__}); pass --depth-source reference')

    def own(x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 1, H, W) scaled disparity
        return model.disp_to_depth(model.predict_disparities(x)[0])[0]
    return PredictedDepth(own)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from geo3d.evaluation.corrupted import evaluate_corruptions, format_table, parse_cases
    from geo3d.utils.errors import DataNotFoundError
    from geo3d.utils.io import atomic_write_json, atomic_write_text
    try:
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'config file {args.config} does not exist')
        cases = parse_cases(args.corruptions, args.severity)
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if cfg.get('test_dataloader') is None or cfg.get('test_evaluator') is None:
            raise ValueError(f'{args.config} has no test_dataloader / test_evaluator')
        init_default_scope(cfg.get('default_scope', 'geo3d'))
        # DepthMetric logs a table per row at INFO; the tool prints one table at the end
        MMLogger.get_instance(f'eval_corruptions_{time.time_ns()}', log_level='WARNING')
        model = build_model(cfg, args.checkpoint, args.device)
        source = depth_source_from_args(args, model)
        loader = Runner.build_dataloader(cfg.test_dataloader)
        progress = None
        if not args.no_progress:
            from tqdm import tqdm
            progress = (lambda it: tqdm(it, desc='eval_corruptions', unit='batch'))
        results = evaluate_corruptions(model, loader, cases, dict(cfg.test_evaluator), source,
                                       seed=args.seed, progress=progress)
    except (DataNotFoundError, FileNotFoundError, ValueError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {msg}', file=sys.stderr)
        return 2
    table = format_table(results)
    header = (f'Depth under corruptions: {args.checkpoint} ({args.config}); depth for '
              f'fog/rain/snow: {args.depth_source}; seed {args.seed}\n\n')
    print(header + table, end='')
    for path in (args.out, args.json):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if args.out:
        atomic_write_text(args.out, header + table, fsync=False)
    if args.json:
        atomic_write_json(args.json, {
            'config': args.config, 'checkpoint': args.checkpoint,
            'depth_source': args.depth_source, 'seed': args.seed, 'rows': results},
            fsync=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
