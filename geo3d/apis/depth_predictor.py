"""``DepthPredictor``: images in, relative depth / disparity out, from a config + checkpoint.

The model (a :class:`~geo3d.models.depth.MonoDepth`, or any model with ``predict_disparities``
and ``disp_to_depth``) runs at its training size: every input is resized there (bilinear with
antialiasing), the sigmoid disparity of scale 0 becomes the scaled disparity and depth of
``disp_to_depth`` (Monodepth2's conventions, Godard et al., ICCV 2019), and the disparity is
resized back to the input size bilinearly (Monodepth2's ``test_simple.py`` does the same);
depth there is its inverse. Monocular models know depth only up to scale: the values are in
the network's units (between ``min_depth`` and ``max_depth``), there is no ground truth and no
median scaling here; ``scale_factor`` multiplies depth (5.4 for Monodepth2's stereo models).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image
from torch import Tensor

__all__ = ['DepthPredictor', 'DepthPrediction', 'colorize', 'load_images', 'round_size']

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]
#: the depth decoder needs sizes divisible by this
SIZE_MULTIPLE = 32


@dataclass
class DepthPrediction:
    """Predictions of one image ((H, W) arrays) or a batch ((B, H, W) arrays), float32.

    Attributes:
        disp: scaled disparity (proportional to 1 / depth) at the input size.
        depth: ``scale_factor / disp`` at the input size.
        disp_net, depth_net: the same at the network's size (before resizing back).
    """
    disp: np.ndarray
    depth: np.ndarray
    disp_net: np.ndarray
    depth_net: np.ndarray


def round_size(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """The nearest (height, width) divisible by ``multiple`` (at least 2 * multiple)."""
    def r(v: int) -> int:
        return max(2 * multiple, int(v / multiple + 0.5) * multiple)  # halves round up
    return r(height), r(width)


def _to_float_chw(x: Any, where: str) -> Tensor:
    """One image (H, W, 3) array / PIL / path or (3, H, W) tensor -> (3, H, W) float in [0, 1]."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{where}: image file {path} does not exist')
        try:
            with Image.open(path) as im:
                x = im.convert('RGB')
        except OSError as err:
            raise ValueError(f'{where}: {path} is not a readable image ({err})') from err
    if isinstance(x, Image.Image):
        x = np.array(x.convert('RGB'))
    if isinstance(x, np.ndarray):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f'{where}: an image array must be (H, W, 3) RGB, got {x.shape}')
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    elif isinstance(x, Tensor):
        if x.dim() != 3 or x.shape[0] != 3:
            raise ValueError(f'{where}: an image tensor must be (3, H, W) RGB, got '
                             f'{tuple(x.shape)}')
        t = x
    else:
        raise TypeError(f'{where}: expected a path, PIL image, (H, W, 3) array or (3, H, W) '
                        f'tensor, got {type(x).__name__}')
    return _as_unit_float(t, where)


def _as_unit_float(t: Tensor, where: str) -> Tensor:
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if not t.is_floating_point():
        raise TypeError(f'{where}: images must be uint8 or float in [0, 1], got {t.dtype}')
    t = t.float()
    if t.numel() and (float(t.min()) < -1e-3 or float(t.max()) > 1.0 + 1e-3):
        raise ValueError(f'{where}: float images must be in [0, 1], got values in '
                         f'[{float(t.min()):.3g}, {float(t.max()):.3g}]')
    return t


def load_images(images: ImageLike | Sequence[ImageLike]) -> tuple[Tensor, bool]:
    """Any supported input -> ((B, 3, H, W) float in [0, 1], whether it was a single image).

    Single: a path, PIL image, (H, W, 3) array (uint8 or float in [0, 1]) or (3, H, W) tensor.
    Batch: a (B, H, W, 3) array, a (B, 3, H, W) tensor, or a list of single images of one size.
    """
    if isinstance(images, np.ndarray) and images.ndim == 4:
        if images.shape[3] != 3:
            raise ValueError(f'images: a batch array must be (B, H, W, 3), got {images.shape}')
        t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        return _as_unit_float(t, 'images'), False
    if isinstance(images, Tensor) and images.dim() == 4:
        if images.shape[1] != 3:
            raise ValueError(f'images: a batch tensor must be (B, 3, H, W), got '
                             f'{tuple(images.shape)}')
        return _as_unit_float(images, 'images'), False
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError('images: empty list')
        chw = [_to_float_chw(x, f'images[{i}]') for i, x in enumerate(images)]
        sizes = {tuple(t.shape[-2:]) for t in chw}
        if len(sizes) != 1:
            raise ValueError(f'images: a list must hold images of one size, got {sorted(sizes)}'
                             f'; predict them one by one')
        return torch.stack(chw), False
    return _to_float_chw(images, 'image')[None], True


def colorize(disp: np.ndarray | Tensor, cmap: str = 'magma', vmin: float | None = None,
             vmax: float | None = None, percentile: float = 95.0) -> np.ndarray:
    """Colour a disparity map (near = bright with ``magma``), as Monodepth2's demo.

    Args:
        disp: (H, W) or (B, H, W) disparity (or any map; larger = brighter).
        cmap: a matplotlib colormap name.
        vmin, vmax: the value range mapped to the colormap's ends; None: per image, the
            minimum and the ``percentile``-th percentile (Monodepth2: min and 95th).
        percentile: see ``vmax``.

    Returns:
        (H, W, 3) or (B, H, W, 3) uint8 RGB.
    """
    import matplotlib
    d = disp.detach().cpu().numpy() if isinstance(disp, Tensor) else np.asarray(disp)
    if d.ndim == 3:
        return np.stack([colorize(x, cmap, vmin, vmax, percentile) for x in d])
    if d.ndim != 2:
        raise ValueError(f'colorize: disp must be (H, W) or (B, H, W), got {d.shape}')
    if cmap not in matplotlib.colormaps:
        raise ValueError(f'colorize: unknown matplotlib colormap {cmap!r}')
    d = d.astype(np.float32)
    lo = float(d.min()) if vmin is None else float(vmin)
    hi = float(np.percentile(d, percentile)) if vmax is None else float(vmax)
    norm = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    return matplotlib.colormaps[cmap](np.clip(norm, 0.0, 1.0), bytes=True)[..., :3]


def _config(config: str | os.PathLike | Config | dict) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config(config)
    path = os.fspath(config)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    return Config.fromfile(path)


def _size_from_config(cfg: Config) -> tuple[int, int] | None:
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        ds = (cfg.get(key) or {}).get('dataset') or {}
        if ds.get('height') and ds.get('width'):
            return int(ds['height']), int(ds['width'])
    return None


class DepthPredictor:
    """Monocular depth inference from a geo3d config and checkpoint.

    Args:
        config: a config file (its ``model``, and the training size from the test / train
            dataset's ``height`` / ``width``), a :class:`mmengine.Config` or a dict; None with a
            checkpoint converted by ``tools/convert_depth_weights.py`` (its ``meta`` holds the
            networks' configs and training size).
        checkpoint: a checkpoint of ``tools/train.py`` or ``tools/convert_depth_weights.py``;
            None keeps the random initialisation (with a warning; for benchmarks).
        device: e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        size: (height, width) the network runs at; default the training size. Must be
            divisible by 32 (see :func:`round_size`).
        scale_factor: multiplies depth (5.4 for Monodepth2's stereo models, else 1).

    Raises:
        FileNotFoundError: config or checkpoint missing.
        ValueError: no size known, a size not divisible by 32, or a checkpoint without the
            depth networks (the message lists the missing keys).
    """

    def __init__(self, config: str | os.PathLike | Config | dict | None,
                 checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = 'cpu', size: Sequence[int] | None = None,
                 scale_factor: float = 1.0) -> None:
        import geo3d.models  # noqa: F401  (registers the models)
        from geo3d.registry import MODELS
        from geo3d.utils.checkpoint import load_checkpoint_file

        ckpt = None
        if checkpoint is not None:
            ckpt = load_checkpoint_file(os.fspath(checkpoint), map_location='cpu')
            if not isinstance(ckpt, dict):
                raise ValueError(f'{checkpoint}: not a checkpoint dict')
        meta = (ckpt or {}).get('meta') or {}
        if config is None:
            model_cfg, cfg_size = self._config_from_meta(meta, checkpoint)
        else:
            cfg = _config(config)
            if cfg.get('model') is None:
                raise ValueError(f'{config}: the config has no model')
            model_cfg, cfg_size = dict(cfg.model), _size_from_config(cfg)
        if ckpt is not None:  # the checkpoint brings the weights: no ImageNet download
            for key in ('encoder', 'pose_encoder'):
                if isinstance(model_cfg.get(key), dict):
                    model_cfg[key] = dict(model_cfg[key], pretrained=False)
        if size is None:
            size = cfg_size or ((meta['height'], meta['width'])
                                if meta.get('height') and meta.get('width') else None)
        if size is None:
            raise ValueError('DepthPredictor: no input size in the config (test/train dataset '
                             'height and width) or checkpoint meta; pass size=(height, width)')
        self.device = torch.device(device)
        self.model = MODELS.build(model_cfg)
        for attr in ('predict_disparities', 'disp_to_depth'):
            if not hasattr(self.model, attr):
                raise TypeError(f'DepthPredictor: {type(self.model).__name__} has no {attr}(); '
                                f'a depth model such as MonoDepth is needed')
        if ckpt is not None:
            self._load_weights(ckpt, os.fspath(checkpoint))
        else:
            warnings.warn('DepthPredictor: no checkpoint, the model is randomly initialised',
                          stacklevel=2)
        self.model.to(self.device).eval()
        self.size = size  # validated by the setter
        self.scale_factor = float(scale_factor)

    @staticmethod
    def _config_from_meta(meta: dict, checkpoint: Any) -> tuple[dict, tuple[int, int] | None]:
        configs = meta.get('module_configs')
        if not isinstance(configs, dict) or 'encoder' not in configs:
            raise ValueError(f'DepthPredictor: config=None needs a checkpoint converted by '
                             f'tools/convert_depth_weights.py (meta.module_configs); '
                             f'{checkpoint} has none, pass the config file')
        model = {'type': 'MonoDepth', 'encoder': dict(configs['encoder']),
                 'depth_decoder': dict(configs['depth_decoder'])}
        scales = configs['depth_decoder'].get('scales')
        if scales is not None:
            model['scales'] = tuple(scales)
        if 'pose_encoder' in configs:
            model['pose_encoder'] = dict(configs['pose_encoder'])
            model['pose_decoder'] = dict(configs['pose_decoder'])
        else:
            model['frame_ids'] = (0, 's')  # depth networks only
        size = (int(meta['height']), int(meta['width'])) \
            if meta.get('height') and meta.get('width') else None
        return model, size

    def _load_weights(self, ckpt: dict, path: str) -> None:
        sd = ckpt.get('state_dict', ckpt)
        sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()
              if isinstance(v, Tensor)}
        own = self.model.state_dict()
        depth_keys = [k for k in own if k.split('.', 1)[0] in ('encoder', 'depth_decoder')]
        missing = [k for k in depth_keys if k not in sd]
        if missing:
            raise ValueError(f'{path}: not a checkpoint of this depth model; missing '
                             f'{len(missing)} depth-network keys, e.g. {missing[:3]}')
        unexpected = [k for k in sd if k not in own]
        if unexpected:
            raise ValueError(f'{path}: keys the model does not have, e.g. {unexpected[:3]} '
                             f'(config and checkpoint do not match)')
        bad = [k for k in sd if sd[k].shape != own[k].shape]
        if bad:
            raise ValueError(f'{path}: shapes differ from the model for {bad[:3]} (e.g. '
                             f'{tuple(sd[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})')
        self.model.load_state_dict(sd, strict=False)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        return self._size

    @size.setter
    def size(self, value: Sequence[int]) -> None:
        h, w = (int(v) for v in value)
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h < 2 * SIZE_MULTIPLE or \
                w < 2 * SIZE_MULTIPLE:
            raise ValueError(f'DepthPredictor: size (height, width)=({h}, {w}) must be '
                             f'divisible by {SIZE_MULTIPLE} and at least {2 * SIZE_MULTIPLE}; '
                             f'e.g. {round_size(h, w)}')
        self._size = (h, w)

    @torch.no_grad()
    def predict_tensor(self, images: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) float in [0, 1] -> tensors on the device.

        Returns ``disp``, ``depth`` (B, 1, H, W) at the input size and ``disp_net``,
        ``depth_net`` (B, 1, h, w) at the network size.
        """
        x = images.to(self.device, torch.float32)
        in_size = tuple(x.shape[-2:])
        if in_size != self.size:
            x = F.interpolate(x, self.size, mode='bilinear', align_corners=False, antialias=True)
        sigmoid = self.model.predict_disparities(x)[0]
        disp_net, _ = self.model.disp_to_depth(sigmoid)
        disp = disp_net if in_size == self.size else F.interpolate(
            disp_net, in_size, mode='bilinear', align_corners=False)
        return {'disp': disp, 'depth': self.scale_factor / disp, 'disp_net': disp_net,
                'depth_net': self.scale_factor / disp_net}

    def predict(self, images: ImageLike | Sequence[ImageLike]) -> DepthPrediction:
        """Depth of one image or a batch (see :func:`load_images` for the accepted inputs)."""
        batch, single = load_images(images)
        out = self.predict_tensor(batch)
        arrays = {k: v[:, 0].float().cpu().numpy() for k, v in out.items()}
        if single:
            arrays = {k: v[0] for k, v in arrays.items()}
        return DepthPrediction(**arrays)

    __call__ = predict
