"""The corrupted test split: a depth model evaluated clean and under each corruption.

Robust-Depth (Saunders et al., ICCV 2023) evaluates on augmented copies of the KITTI Eigen
test frames (``--robust_test``); here the copies are rendered on the fly by
:mod:`geo3d.datasets.transforms.weather` and every row goes through the same
:class:`~geo3d.evaluation.DepthMetric` as ``tools/test.py``:

* the clean row is exactly ``tools/test.py``'s evaluation (same dataloader, same ``predict``);
* a corrupted row replaces the colour frames of the test batch (all frames of a sample, every
  pyramid level re-made by area downsampling) by their corrupted versions and predicts again;
* corruption is deterministic per image: the generator of image ``index`` (the dataset index
  in the sample's metainfo), frame position ``k`` and corruption ``name`` is seeded by
  :func:`corruption_seed` ``(seed, index, k, name)``, independent of the batch size, so two
  models (and two runs) see identical corrupted inputs as long as the depth is the same;
* fog, rain and snow need metric depth on the test frames. Real KITTI test frames only have
  sparse LiDAR, so the depth comes from a :class:`DepthSource`:
  :class:`PredictedDepth` (a depth model's clean prediction, scaled per image to metres by the
  median ratio to the LiDAR ground truth; pass the SAME reference model for every model
  compared, e.g. the baseline, so the inputs are identical), or :class:`DemoDepth` (the demo
  drives' rendered dense depth, ``proj_depth_demo/``). The corruption is applied at the
  network's input resolution (the test pipeline has resized the frames), the target's depth
  serving all of its frames.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from geo3d.datasets.transforms.weather import Corruption, parse_corruption_spec
from geo3d.registry import METRICS

from .depth import DEPTH_METRIC_NAMES, resize_disparity

__all__ = ['CorruptionCase', 'parse_cases', 'corruption_seed', 'corrupt_inputs',
           'DepthSource', 'PredictedDepth', 'DemoDepth', 'evaluate_corruptions',
           'format_table', 'demo_depth_path']


@dataclass(frozen=True)
class CorruptionCase:
    """One row: ``name`` (``'clean'`` or e.g. ``'fog:3'``), the corruption and severity."""

    name: str
    corruption: Corruption | None = None
    severity: int = 0

    @property
    def clean(self) -> bool:
        return self.corruption is None


def parse_cases(specs: Iterable[str], default_severity: int = 3) -> list[CorruptionCase]:
    """``['fog:3', 'rain+fog+night:5', 'snow']`` -> the clean row then one row per spec."""
    cases = [CorruptionCase('clean')]
    for spec in specs:
        name, corruption, severity = parse_corruption_spec(spec, default_severity)
        label = f'{name}:{severity}'
        if any(c.name == label for c in cases):
            raise ValueError(f'corruption {label!r} is listed twice')
        cases.append(CorruptionCase(label, corruption, severity))
    return cases


def corruption_seed(seed: int, index: int, frame: int, name: str) -> int:
    """A stable 63-bit seed of (run seed, dataset index, frame position, corruption name)."""
    key = f'{int(seed)}/{int(index)}/{int(frame)}/{name}'.encode()
    return (zlib.crc32(key) << 31 ^ zlib.adler32(key)) & (2 ** 63 - 1)


def _meta(sample: Any) -> Mapping:
    return sample.metainfo if hasattr(sample, 'metainfo') else sample


def _index(sample: Any, where: str) -> int:
    idx = _meta(sample).get('index')
    if idx is None:
        raise KeyError(f'{where}: the data sample has no "index" in its metainfo (needed to '
                       f'seed its corruption)')
    return int(idx)


def _target_position(samples: Sequence[Any] | None) -> int:
    for s in samples or []:
        ids = _meta(s).get('frame_ids')
        if ids is not None:
            return list(ids).index(0)
    return 0


def _rebuild_pyramid(level0: Tensor, num_scales: int) -> list[Tensor]:
    """(B, F, 3, H, W) -> the list over scales (area downsampling, as a resize would)."""
    b, f = level0.shape[:2]
    out = [level0]
    for s in range(1, num_scales):
        x = F.interpolate(level0.flatten(0, 1), scale_factor=0.5 ** s, mode='area')
        out.append(x.view(b, f, *x.shape[1:]))
    return out


@torch.no_grad()
def corrupt_inputs(inputs: Tensor | Mapping, samples: Sequence[Any], case: CorruptionCase,
                   depth: Tensor | None, seed: int = 0) -> Tensor | dict:
    """The inputs of one test batch with every colour frame corrupted by ``case``.

    Args:
        inputs: the data preprocessor's inputs: a (B, 3, H, W) image batch or the dict of
            :class:`~geo3d.datasets.KITTIRawDataset` (``color`` pyramid (B, F, 3, H_s, W_s)).
        samples: the B data samples (their metainfo ``index`` seeds the corruption).
        case: the row.
        depth: (B, 1, H, W) metres of the target frames, or None for effects without depth.
        seed: the run seed.

    Returns:
        The inputs in the same structure (``color_aug`` = ``color`` for dicts); unchanged for
        the clean case.
    """
    if case.clean:
        return inputs
    assert case.corruption is not None
    if isinstance(inputs, Tensor):
        frames = inputs[:, None]
    else:
        frames = inputs['color'][0]
    b, nf = frames.shape[:2]
    if len(samples) != b:
        raise ValueError(f'corrupt_inputs: {len(samples)} samples for a batch of {b}')
    out = torch.empty_like(frames)
    for i in range(b):
        index = _index(samples[i], 'corrupt_inputs')
        d = depth[i:i + 1] if depth is not None else None
        for k in range(nf):
            g = torch.Generator().manual_seed(corruption_seed(seed, index, k, case.name))
            out[i, k] = case.corruption(frames[i, k:k + 1].clamp(0, 1), d, case.severity, g)[0]
    if isinstance(inputs, Tensor):
        return out[:, 0]
    new = dict(inputs)
    new['color'] = _rebuild_pyramid(out, len(inputs['color']))
    new['color_aug'] = new['color']
    return new


# ============================================================================ depth sources
class DepthSource:
    """Gives metric depth (B, 1, H, W) of a batch's target frames (H, W of the frames)."""

    name = 'depth source'

    def __call__(self, images: Tensor, samples: Sequence[Any]) -> Tensor:
        raise NotImplementedError


class PredictedDepth(DepthSource):
    """A depth model's prediction on the clean frame, in metres.

    Args:
        predict_disp: (B, 3, H, W) -> (B, 1, H, W) disparity (anything proportional to
            1 / depth), e.g. ``DepthPredictor.predict_tensor(x)['disp']`` or a model's
            ``disp_to_depth(predict_disparities(x)[0])[0]``.
        gt_range: (min, max) metres of the LiDAR pixels used for the scale.
        fallback_median: median depth (m) given to a frame without ground truth.

    Scale: per image ``median(gt) / median(pred)`` over the valid ground-truth pixels (the
    prediction resized as a disparity to the ground truth's size, as DepthMetric does).
    """

    name = 'predicted'

    def __init__(self, predict_disp: Callable[[Tensor], Tensor],
                 gt_range: Sequence[float] = (1e-3, 80.0), fallback_median: float = 15.0) -> None:
        self.predict_disp = predict_disp
        self.gt_range = (float(gt_range[0]), float(gt_range[1]))
        self.fallback_median = float(fallback_median)

    def __call__(self, images: Tensor, samples: Sequence[Any]) -> Tensor:
        disp = self.predict_disp(images).float()
        if disp.shape != (images.shape[0], 1, *images.shape[-2:]):
            raise ValueError(f'PredictedDepth: the reference prediction has shape '
                             f'{tuple(disp.shape)}, expected (B, 1, H, W) like the images')
        depth = 1.0 / disp.clamp_min(1e-6)
        out = []
        for i in range(depth.shape[0]):
            gt = getattr(samples[i], 'gt_depth', None) if hasattr(samples[i], 'metainfo') \
                else _meta(samples[i]).get('gt_depth')
            ratio = None
            if gt is not None:
                g = np.asarray(gt.detach().cpu() if isinstance(gt, Tensor) else gt,
                               dtype=np.float32).squeeze()
                valid = (g > self.gt_range[0]) & (g < self.gt_range[1])
                if valid.any():
                    d = 1.0 / resize_disparity(disp[i, 0].cpu().numpy(), *g.shape)
                    ratio = float(np.median(g[valid]) / np.median(d[valid]))
            if ratio is None:
                ratio = self.fallback_median / float(depth[i].median())
            out.append(depth[i] * ratio)
        return torch.stack(out)


def demo_depth_path(image_path: str) -> str:
    """``<drive>/image_0X/data/<frame>.png`` -> ``<drive>/proj_depth_demo/image_0X/<frame>.png``
    (the rendered dense depth of ``tools/make_demo_data.py --kind kitti``)."""
    data_dir = os.path.dirname(image_path)
    cam_dir = os.path.dirname(data_dir)
    drive = os.path.dirname(cam_dir)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return os.path.join(drive, 'proj_depth_demo', os.path.basename(cam_dir), stem + '.png')


class DemoDepth(DepthSource):
    """The demo drives' rendered dense depth (uint16 PNG, metres x 256; 0 = sky), resized
    (nearest) to the frames' size; flipped samples are flipped back."""

    name = 'demo'

    def __call__(self, images: Tensor, samples: Sequence[Any]) -> Tensor:
        from geo3d.datasets.demo_street import decode_depth_png
        h, w = images.shape[-2:]
        out = []
        for s in samples:
            meta = _meta(s)
            paths = meta.get('image_paths')
            if not paths:
                raise KeyError('DemoDepth: the data sample has no "image_paths" metainfo')
            path = demo_depth_path(paths[_target_position([s])])
            if not os.path.isfile(path):
                raise FileNotFoundError(f'DemoDepth: no rendered depth {path} for '
                                        f'{paths[0]}; only the demo drives of '
                                        f'tools/make_demo_data.py --kind kitti have it')
            d = torch.from_numpy(decode_depth_png(path))[None, None]
            if meta.get('flip'):
                d = d.flip(-1)
            out.append(F.interpolate(d, (h, w), mode='nearest')[0])
        return torch.stack(out).to(images.device)


# ============================================================================== evaluation
def _target_images(inputs: Tensor | Mapping, samples: Sequence[Any]) -> Tensor:
    if isinstance(inputs, Tensor):
        return inputs
    return inputs['color'][0][:, _target_position(samples)]


def evaluate_corruptions(model: torch.nn.Module, dataloader: Iterable,
                         cases: Sequence[CorruptionCase],
                         metric_cfg: dict, depth_source: DepthSource | None = None, seed: int = 0,
                         dataset_size: int | None = None,
                         progress: Callable[[Iterable], Iterable] | None = None
                         ) -> dict[str, dict[str, float]]:
    """Evaluate ``model`` on every case (one pass over the test data).

    Args:
        model: an mmengine depth model with a data preprocessor and ``predict`` mode (e.g.
            :class:`~geo3d.models.depth.MonoDepth`), in eval mode on its device.
        dataloader: the test dataloader (``tools/test.py``'s).
        cases: rows (see :func:`parse_cases`); the clean row is ``tools/test.py``'s numbers.
        metric_cfg: the metric config (``test_evaluator``), built once per row.
        depth_source: metric depth for the effects that need it (required if any does).
        seed: run seed of :func:`corruption_seed`.
        dataset_size: number of test samples (default ``len(dataloader.dataset)``).
        progress: wraps the dataloader (e.g. ``tqdm``).

    Returns:
        ``{case name: {metric: value}}`` (the metric's keys without its prefix).
    """
    if any(c.corruption is not None and c.corruption.needs_depth for c in cases) and \
            depth_source is None:
        need = [c.name for c in cases if c.corruption is not None and c.corruption.needs_depth]
        raise ValueError(f'{", ".join(need)} need a depth source (metric depth of the test '
                         f'frames)')
    metrics = {c.name: METRICS.build(dict(metric_cfg)) for c in cases}
    model.eval()
    loader = progress(dataloader) if progress is not None else dataloader
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs, samples = data['inputs'], data['data_samples']
            depth = None
            if depth_source is not None and any(
                    not c.clean and (c.corruption.needs_depth or c.corruption.uses_depth)
                    for c in cases):
                depth = depth_source(_target_images(inputs, samples), samples)
            for case in cases:
                x = corrupt_inputs(inputs, samples, case, depth, seed)
                preds = model(x, samples, mode='predict')
                metrics[case.name].process(batch, preds)
    size = dataset_size if dataset_size is not None else len(dataloader.dataset)
    out = {}
    for name, metric in metrics.items():
        values = metric.evaluate(size)
        out[name] = {k.split('/', 1)[-1]: float(v) for k, v in values.items()}
    return out


def format_table(results: Mapping[str, Mapping[str, float]],
                 columns: Sequence[str] = DEPTH_METRIC_NAMES) -> str:
    """A markdown table: rows = cases, columns = the 7 metrics (AbsRel first)."""
    head = ['corruption'] + list(columns)
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---'] + ['---:'] * len(columns))
             + '|']
    for name, vals in results.items():
        lines.append('| ' + ' | '.join([name] + [f'{vals[c]:.4f}' for c in columns]) + ' |')
    return '\n'.join(lines) + '\n'
