"""Multi-view image transforms for 2D self-supervised learning (torchvision.transforms.v2).

A sample dict holds ``img``, a (3, H, W) uint8 tensor (or a PIL image). :class:`MultiViewImages`
draws V augmented views of it, each group of views from its own torchvision pipeline
(mmpretrain's ``MultiView(num_views=[1, 1], transforms=[pipe1, pipe2])`` layout), and
:class:`PackImageViews` packs ``{'inputs': views, 'data_samples': {gt_label, sample_idx}}``.
Normalisation happens later, on the device, in
:class:`~geo3d.models.data_preprocessors.ImageViewsDataPreprocessor`, so views stay uint8.

Pipeline steps are torchvision ``transforms.v2`` classes given as configs, e.g.
``dict(type='RandomResizedCrop', size=32, scale=(0.2, 1.0))``; nested ``transforms`` lists (in
``RandomApply``, ``RandomChoice``, ...) are built the same way. The SimCLR recipe for small images
(Chen et al., ICML 2020, appendix B.9 for CIFAR-10) is ``RandomResizedCrop`` + colour jitter
(p 0.8) + random grayscale (p 0.2) [+ blur] [+ flip]; see ``configs/_base_/datasets/digits_ssl.py``.

Randomness: torchvision draws from torch's global RNG (seeded per dataloader worker by torch
and mmengine). With ``seed`` a transform keeps a private torch RNG state instead (a reproducible
stream, for tests).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torchvision.transforms.v2 as T
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from geo3d.registry import TRANSFORMS

__all__ = ['build_view_transform', 'build_view_pipeline', 'MultiViewImages', 'PackImageViews']


def build_view_transform(cfg: dict | Callable) -> Callable:
    """A torchvision ``transforms.v2`` transform from ``dict(type=<class name>, **kwargs)``.

    ``type`` may also be a class. Values that are configs (or lists of configs), such as
    ``RandomApply``'s ``transforms``, are built recursively. Callables pass through.
    """
    if callable(cfg) and not isinstance(cfg, dict):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'view transform must be a callable or a dict with a "type" naming a '
                         f'torchvision.transforms.v2 class, got {cfg!r}')
    kwargs = dict(cfg)
    kind = kwargs.pop('type')
    if isinstance(kind, str):
        cls = getattr(T, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise ValueError(f'view transform type {kind!r} is not a torchvision.transforms.v2 '
                             f'transform')
    else:
        cls = kind

    def build_value(v: Any) -> Any:
        if isinstance(v, dict) and 'type' in v:
            return build_view_transform(v)
        if isinstance(v, (list, tuple)) and v and all(isinstance(e, dict) and 'type' in e
                                                      for e in v):
            return [build_view_transform(e) for e in v]
        if isinstance(v, list):  # configs turn tuples into lists (scale=(0.2, 1.0), ...)
            return tuple(v)
        return v

    return cls(**{k: build_value(v) for k, v in kwargs.items()})


def build_view_pipeline(steps: Sequence[dict | Callable]) -> Callable:
    """``transforms.v2.Compose`` of :func:`build_view_transform` steps (identity when empty)."""
    return T.Compose([build_view_transform(s) for s in steps]) if steps else T.Identity()


def as_image_tensor(img: Any, name: str = 'img') -> Tensor:
    """(3, H, W) tensor from a tensor (kept) or a PIL image (RGB, uint8)."""
    if isinstance(img, Tensor):
        if img.ndim != 3:
            raise ValueError(f'{name} must be a (C, H, W) tensor, got shape {tuple(img.shape)}')
        return img
    if isinstance(img, Image.Image):
        return TF.pil_to_tensor(img.convert('RGB'))
    raise TypeError(f'{name} must be a (C, H, W) tensor or a PIL image, got {type(img).__name__}')


class _PrivateRNG:
    """Runs calls under a private torch CPU RNG state when seeded, else under the global one."""

    def __init__(self, seed: int | None) -> None:
        self._state: Tensor | None = None
        if seed is not None:
            self._state = torch.Generator().manual_seed(int(seed)).get_state()

    def run(self, fn: Callable[[], Any]) -> Any:
        if self._state is None:
            return fn()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._state)
            out = fn()
            self._state = torch.get_rng_state()
        return out


@TRANSFORMS.register_module()
class MultiViewImages:
    """``results['img']`` -> ``results['views']``, a list of augmented views.

    Args:
        pipelines: one list of view-transform configs per group of views (see the module
            docstring); a single group may be given as a flat list.
        num_views: views drawn from each pipeline (an int when all groups draw the same
            number). Default 2 views from one pipeline (SimCLR's symmetric views).
        seed: private RNG seed (tests); None draws from torch's global RNG.

    Output: ``views`` is the list of ``sum(num_views)`` tensors, group by group; each keeps
    ``img``'s dtype (uint8 images stay uint8).
    """

    def __init__(self, pipelines: Sequence[Sequence[dict | Callable]] | Sequence[dict],
                 num_views: int | Sequence[int] = 2, seed: int | None = None) -> None:
        groups = list(pipelines)
        if groups and not isinstance(groups[0], (list, tuple)):
            groups = [groups]  # a single flat pipeline
        if not groups:
            raise ValueError('MultiViewImages: pipelines must hold at least one pipeline')
        counts = [int(num_views)] * len(groups) if isinstance(num_views, int) \
            else [int(n) for n in num_views]
        if len(counts) != len(groups):
            raise ValueError(f'MultiViewImages: num_views has {len(counts)} entries but there '
                             f'are {len(groups)} pipelines')
        if any(n < 0 for n in counts) or sum(counts) < 1:
            raise ValueError(f'MultiViewImages: num_views must be >= 0 and sum to >= 1, got '
                             f'{counts}')
        self.num_views = counts
        self.pipelines = [build_view_pipeline(g) for g in groups]
        self._rng = _PrivateRNG(seed)

    def __call__(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("MultiViewImages: the sample has no 'img'")
        img = as_image_tensor(results['img'])

        def draw() -> list[Tensor]:
            return [pipe(img) for pipe, n in zip(self.pipelines, self.num_views)
                    for _ in range(n)]

        results['views'] = self._rng.run(draw)
        return results

    def __repr__(self) -> str:
        return f'MultiViewImages(num_views={self.num_views}, pipelines={self.pipelines})'


@TRANSFORMS.register_module()
class PackImageViews:
    """Pack a sample for the image models: ``{'inputs': ..., 'data_samples': {...}}``.

    ``inputs`` is the list of views when ``views`` is present (after :class:`MultiViewImages`),
    else ``img`` as a (3, H, W) tensor (evaluation). ``data_samples`` holds the ``meta_keys``
    the sample has (missing ones are left out; with ``strict`` they raise).

    Args:
        meta_keys: per-sample values passed to the model (``gt_label`` for SLA and the probes,
            ``sample_idx`` for iSogCLR).
        strict: raise ``KeyError`` when a meta key is missing.
    """

    def __init__(self, meta_keys: Sequence[str] = ('gt_label', 'sample_idx'),
                 strict: bool = False) -> None:
        self.meta_keys = tuple(meta_keys)
        self.strict = bool(strict)

    def __call__(self, results: dict) -> dict:
        if 'views' in results:
            inputs: Any = list(results['views'])
        elif 'img' in results:
            inputs = as_image_tensor(results['img'])
        else:
            raise KeyError("PackImageViews: the sample has neither 'views' nor 'img'")
        missing = [k for k in self.meta_keys if k not in results]
        if missing and self.strict:
            raise KeyError(f'PackImageViews: the sample lacks meta keys {missing} (has '
                           f'{sorted(results)})')
        return {'inputs': inputs,
                'data_samples': {k: results[k] for k in self.meta_keys if k in results}}

    def __repr__(self) -> str:
        return f'PackImageViews(meta_keys={self.meta_keys})'
