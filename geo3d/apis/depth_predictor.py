"""``DepthPredictor``: images in, relative depth / disparity out, from a config + checkpoint.

The model (a :class:`~geo3d.models.depth.MonoDepth`, or any model with ``predict_disparities``
and ``disp_to_depth``) runs at its training size: every input is resized there (bilinear with
antialiasing), the sigmoid disparity of scale 0 becomes the scaled disparity and depth of
``disp_to_depth`` (Monodepth2's conventions, Godard et al., ICCV 2019), and the disparity is
resized back to the input size bilinearly (Monodepth2's ``test_simple.py`` does the same);
depth there is its inverse. Monocular models know depth only up to scale: the values are in
the network's units (between ``min_depth`` and ``max_depth``), there is no ground truth and no
median scaling here; ``scale_factor`` multiplies depth (5.4 for Monodepth2's stereo models).

Multi-frame models (:class:`~geo3d.models.depth.ManyDepth`, ``ProDepth``: any model with
``matching_ids``) also take the previous frame of the video and the camera intrinsics; they
get the dataset-style dict (``color`` (B, 2, 3, h, w) for frames ``(0, -1)``, ``K`` (B, 1, 4,
4) pixel intrinsics at the network size), as ManyDepth's ``test_simple.py``. Without a
previous frame (the first frame of a stream) they run in single-frame mode: zero pose, no cost
volume. Intrinsics are *normalised* (fx/W, fy/H, cx/W, cy/H), default KITTI's.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image
from torch import Tensor

__all__ = ['DepthPredictor', 'DepthPrediction', 'colorize', 'load_images', 'round_size',
           'load_intrinsics', 'is_multi_frame', 'offline_model_config']

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]
IntrinsicsLike = Union[str, os.PathLike, np.ndarray, Tensor, Sequence[Sequence[float]]]
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


def load_intrinsics(intrinsics: IntrinsicsLike | None = None) -> np.ndarray:
    """Normalised camera intrinsics -> (4, 4) float64 ``[[fx/W, 0, cx/W, 0], [0, fy/H, cy/H,
    0], [0, 0, 1, 0], [0, 0, 0, 1]]``.

    Args:
        intrinsics: None (KITTI's, Monodepth2's ``[[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0,
            1]]``), a 3x3 or 4x4 array / tensor / nested list, or a JSON file holding one
            (ManyDepth's ``assets/test_sequence_intrinsics.json`` format: a 3x3 list).

    Raises:
        FileNotFoundError: the JSON file does not exist.
        ValueError: not JSON, not a 3x3 / 4x4 matrix, not finite, focal lengths not positive,
            or a principal point outside (0, 1) (pixel intrinsics: divide row 0 by the image
            width and row 1 by its height). Messages name the file.
    """
    from geo3d.datasets.kitti import MONODEPTH2_KITTI_K
    if intrinsics is None:
        return np.array(MONODEPTH2_KITTI_K, np.float64)
    where = 'intrinsics'
    if isinstance(intrinsics, (str, os.PathLike)):
        where = os.fspath(intrinsics)
        if not os.path.isfile(where):
            raise FileNotFoundError(f'intrinsics file {where} does not exist')
        try:
            with open(where, encoding='utf-8') as f:
                intrinsics = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'{where}: not a JSON file ({err}); expected a normalised 3x3 '
                             f'matrix such as [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]]'
                             ) from err
    if isinstance(intrinsics, Tensor):
        intrinsics = intrinsics.detach().cpu().numpy()
    try:
        K = np.asarray(intrinsics, dtype=np.float64)
    except (TypeError, ValueError):
        K = None
    if K is None or K.shape not in ((3, 3), (4, 4)):
        got = K.shape if K is not None else type(intrinsics).__name__
        raise ValueError(f'{where}: intrinsics must be a normalised 3x3 or 4x4 matrix (fx/W, '
                         f'fy/H, cx/W, cy/H; ManyDepth\'s test_sequence_intrinsics.json format), '
                         f'got {got}')
    if not np.isfinite(K).all():
        raise ValueError(f'{where}: intrinsics hold non-finite values')
    out = np.eye(4)
    out[:3, :3] = K[:3, :3]
    fx, fy, cx, cy = out[0, 0], out[1, 1], out[0, 2], out[1, 2]
    if fx <= 0 or fy <= 0:
        raise ValueError(f'{where}: focal lengths fx/W={fx:g}, fy/H={fy:g} must be positive')
    if not (0 < cx < 1 and 0 < cy < 1):
        raise ValueError(f'{where}: principal point cx/W={cx:g}, cy/H={cy:g} is not inside (0, 1)'
                         f'; intrinsics must be normalised by the image size (divide row 0 by '
                         f'the width and row 1 by the height), e.g. KITTI\'s [[0.58, 0, 0.5], '
                         f'[0, 1.92, 0.5], [0, 0, 1]]')
    if not np.allclose(out[2, :3], [0, 0, 1]) or out[1, 0] != 0:
        raise ValueError(f'{where}: not an intrinsics matrix: the last row must be [0, 0, 1] '
                         f'and K[1, 0] zero, got {K[:3, :3].tolist()}')
    return out


def is_multi_frame(model: Any) -> bool:
    """Whether ``model`` is a multi-frame depth model (ManyDepth, ProDepth: it has
    ``matching_ids``, the frames of its cost volume, and a single-frame ``teacher``)."""
    return getattr(model, 'matching_ids', None) is not None and hasattr(model, 'teacher')


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


def offline_model_config(cfg: Any) -> Any:
    """A copy of a model config that reads no weights file: every truthy ``pretrained`` (an
    ImageNet download or path) becomes False and ``teacher_checkpoint`` None. For a model
    whose weights come from its own checkpoint, or random ones (benchmarks)."""
    if isinstance(cfg, dict):
        out = {k: offline_model_config(v) for k, v in cfg.items()}
        if out.get('pretrained'):
            out['pretrained'] = False
        if out.get('teacher_checkpoint'):
            out['teacher_checkpoint'] = None
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(offline_model_config(v) for v in cfg)
    return cfg


class DepthPredictor:
    """Monocular depth inference from a geo3d config and checkpoint, single- or multi-frame.

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
        intrinsics: normalised intrinsics of the camera for multi-frame models (see
            :func:`load_intrinsics`: a 3x3 / 4x4 matrix or a JSON file; default KITTI's);
            scaled to the network size. Single-frame models do not use them.

    Attributes:
        multi_frame: the model matches against the previous frame (:func:`is_multi_frame`).

    Raises:
        FileNotFoundError: config, checkpoint or intrinsics file missing.
        ValueError: no size known, a size not divisible by 32, a checkpoint without the
            networks (the message lists the missing keys), or bad intrinsics.
    """

    def __init__(self, config: str | os.PathLike | Config | dict | None,
                 checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = 'cpu', size: Sequence[int] | None = None,
                 scale_factor: float = 1.0, intrinsics: IntrinsicsLike | None = None) -> None:
        import geo3d.models  # noqa: F401  (registers the models)
        from geo3d.registry import MODELS
        from geo3d.utils.checkpoint import load_checkpoint_file

        self.intrinsics = intrinsics  # validated first: a cheap error before the model
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
            model_cfg = offline_model_config(model_cfg)
        if size is None:
            size = cfg_size or ((meta['height'], meta['width'])
                                if meta.get('height') and meta.get('width') else None)
        if size is None:
            raise ValueError('DepthPredictor: no input size in the config (test/train dataset '
                             'height and width) or checkpoint meta; pass size=(height, width)')
        self.device = torch.device(device)
        self.model = MODELS.build(model_cfg)
        if not hasattr(self.model, 'predict_disparities') or not (
                hasattr(self.model, 'disp_to_depth') or hasattr(self.model, 'max_depth')):
            raise TypeError(f'DepthPredictor: {type(self.model).__name__} has no '
                            f'predict_disparities() and disp_to_depth() (or min_depth / '
                            f'max_depth); a depth model such as MonoDepth is needed')
        self.multi_frame = is_multi_frame(self.model)
        if ckpt is not None:
            self._load_weights(ckpt, os.fspath(checkpoint))
        else:
            warnings.warn('DepthPredictor: no checkpoint, the model is randomly initialised',
                          stacklevel=2)
        self.model.to(self.device).eval()
        self.size = size  # validated by the setter
        self.scale_factor = float(scale_factor)
        self._last: Tensor | None = None  # the stream's previous frame at the network size

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
        if self.multi_frame:  # teacher, pose net, matching encoder (bins), decoders: all used
            needed, what = list(own), 'network'
        else:
            needed = [k for k in own if k.split('.', 1)[0] in ('encoder', 'depth_decoder')]
            what = 'depth-network'
        missing = [k for k in needed if k not in sd]
        if missing:
            raise ValueError(f'{path}: not a checkpoint of this depth model '
                             f'({type(self.model).__name__}); missing {len(missing)} {what} '
                             f'keys, e.g. {missing[:3]}')
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
        self._last = None  # a stored previous frame has the old size

    @property
    def intrinsics(self) -> np.ndarray:
        """(4, 4) normalised intrinsics (fx/W, fy/H, cx/W, cy/H) of multi-frame inference;
        set with anything :func:`load_intrinsics` reads (None: KITTI's)."""
        return self._intrinsics.copy()

    @intrinsics.setter
    def intrinsics(self, value: IntrinsicsLike | None) -> None:
        self._intrinsics = load_intrinsics(value)

    def pixel_intrinsics(self, intrinsics: IntrinsicsLike | None = None) -> Tensor:
        """(4, 4) pixel intrinsics at the network size (normalised K times the network's
        width / height, Monodepth2's ``K_0``); default the predictor's intrinsics."""
        from geo3d.structures.camera import scale_intrinsics
        K = self._intrinsics if intrinsics is None else load_intrinsics(intrinsics)
        h, w = self.size
        return scale_intrinsics(torch.from_numpy(K).float(), h, w).to(self.device)

    # ------------------------------------------------------------------ tensors
    def _to_network(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, h, w) at the network size, on the device."""
        x = images.to(self.device, torch.float32)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, self.size, mode='bilinear', align_corners=False, antialias=True)
        return x

    def multi_frame_inputs(self, images: Tensor, previous: Tensor, K: Tensor
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The dataset-style batch of a multi-frame model: ``({'color': [(B, 2, 3, h, w)],
        'K': (B, 1, 4, 4), 'inv_K': (B, 1, 4, 4)}, data samples with frame_ids (0, -1))``.

        Args:
            images, previous: (B, 3, h, w) current and previous frames at the network size;
                an all-zero previous frame marks it missing (single-frame fallback).
            K: (4, 4) pixel intrinsics at the network size (:meth:`pixel_intrinsics`).
        """
        b = images.shape[0]
        Ks = K.to(images)[None, None].expand(b, 1, 4, 4)
        inputs = {'color': [torch.stack([images, previous], 1)], 'K': Ks,
                  'inv_K': torch.linalg.inv(Ks)}
        return inputs, [{'frame_ids': (0, -1)} for _ in range(b)]

    def _sigmoid(self, x: Tensor, previous: Tensor | None, K: Tensor | None) -> Tensor:
        """Network-size inputs -> (B, 1, h, w) sigmoid disparity of scale 0."""
        if not self.multi_frame or previous is None:
            return self.model.predict_disparities(x)[0]  # multi-frame: zero-pose fallback
        inputs, samples = self.multi_frame_inputs(x, previous, K)
        return self.model.predict_disparities(inputs, samples)[0]

    @staticmethod
    def _disp_to_depth(model: Any, sigmoid: Tensor) -> Tensor:
        """Sigmoid -> scaled disparity with the model's depth range (ManyDepth has no
        ``disp_to_depth`` method; its range is its teacher's)."""
        if hasattr(model, 'disp_to_depth'):
            return model.disp_to_depth(sigmoid)[0]
        from geo3d.structures.camera import disp_to_depth
        return disp_to_depth(sigmoid, model.min_depth, model.max_depth)[0]

    def _outputs(self, sigmoid: Tensor, in_size: tuple[int, int], model: Any = None
                 ) -> dict[str, Tensor]:
        disp_net = self._disp_to_depth(self.model if model is None else model, sigmoid)
        disp = disp_net if in_size == self.size else F.interpolate(
            disp_net, in_size, mode='bilinear', align_corners=False)
        return {'disp': disp, 'depth': self.scale_factor / disp, 'disp_net': disp_net,
                'depth_net': self.scale_factor / disp_net}

    @torch.no_grad()
    def predict_tensor(self, images: Tensor, previous: Tensor | None = None,
                       intrinsics: IntrinsicsLike | None = None) -> dict[str, Tensor]:
        """(B, 3, H, W) float in [0, 1] -> tensors on the device.

        Args:
            images: the frames to predict.
            previous: multi-frame models: (B, 3, H', W') the frame before each of ``images``
                (an all-zero frame = none: single-frame fallback for that sample); None: all
                samples single-frame.
            intrinsics: overrides the predictor's for this call (see :func:`load_intrinsics`).

        Returns ``disp``, ``depth`` (B, 1, H, W) at the input size and ``disp_net``,
        ``depth_net`` (B, 1, h, w) at the network size.
        """
        if previous is not None:
            self._check_previous(images, previous)
        in_size = tuple(images.shape[-2:])
        x = self._to_network(images)
        prev = self._to_network(previous) if previous is not None else None
        K = self.pixel_intrinsics(intrinsics) if prev is not None else None
        return self._outputs(self._sigmoid(x, prev, K), in_size)

    def _check_previous(self, images: Tensor, previous: Tensor) -> None:
        if not self.multi_frame:
            raise self._single_frame_error()
        if not isinstance(previous, Tensor) or previous.dim() != 4 or previous.shape[1] != 3 \
                or previous.shape[0] != images.shape[0]:
            shape = tuple(previous.shape) if isinstance(previous, Tensor) else \
                type(previous).__name__
            raise ValueError(f'DepthPredictor: previous must be ({images.shape[0]}, 3, H, W), '
                             f'one frame per image, got {shape}')

    def _single_frame_error(self) -> ValueError:
        return ValueError(f'DepthPredictor: previous= needs a multi-frame model (ManyDepth, '
                          f'ProDepth); {type(self.model).__name__} predicts from one frame')

    # ------------------------------------------------------------------ arrays
    @staticmethod
    def _arrays(out: dict[str, Tensor], single: bool) -> DepthPrediction:
        arrays = {k: v[:, 0].float().cpu().numpy() for k, v in out.items()}
        if single:
            arrays = {k: v[0] for k, v in arrays.items()}
        return DepthPrediction(**arrays)

    def predict(self, images: ImageLike | Sequence[ImageLike],
                previous: ImageLike | Sequence[ImageLike | None] | None = None,
                intrinsics: IntrinsicsLike | None = None) -> DepthPrediction:
        """Depth of one image or a batch (see :func:`load_images` for the accepted inputs).

        Args:
            images: one image or a batch.
            previous: multi-frame models only: the previous frame of the video for each image
                (same kinds of input; for a batch a list that may hold None = no previous
                frame, single-frame fallback). None: single-frame fallback for all (zero
                pose, no cost volume), as ManyDepth's ``--mode mono``.
            intrinsics: normalised intrinsics for this call (default the predictor's).
        """
        batch, single = load_images(images)
        prev = None
        if previous is not None:
            if not self.multi_frame:
                raise self._single_frame_error()
            prev = self._load_previous(previous, batch, single)
        return self._arrays(self.predict_tensor(batch, prev, intrinsics), single)

    @staticmethod
    def _load_previous(previous: Any, batch: Tensor, single: bool) -> Tensor:
        """Previous frames -> (B, 3, H', W'), zeros where a list entry is None."""
        if single or not isinstance(previous, (list, tuple)):
            prev, _ = load_images(previous)
        else:
            if len(previous) != batch.shape[0]:
                raise ValueError(f'previous: {len(previous)} frames for {batch.shape[0]} images')
            given = [i for i, p in enumerate(previous) if p is not None]
            if not given:
                return torch.zeros_like(batch)
            loaded, _ = load_images([previous[i] for i in given])
            prev = loaded.new_zeros(batch.shape[0], *loaded.shape[1:])
            prev[given] = loaded
        if prev.shape[0] != batch.shape[0]:
            raise ValueError(f'previous: {prev.shape[0]} frames for {batch.shape[0]} images')
        return prev

    __call__ = predict

    # ------------------------------------------------------------------ streams
    def reset(self) -> None:
        """Start a new stream: the next :meth:`predict_next` frame has no previous frame."""
        self._last = None

    @torch.no_grad()
    def predict_next(self, frames: ImageLike | Sequence[ImageLike],
                     intrinsics: IntrinsicsLike | None = None) -> DepthPrediction:
        """The next frame(s) of a video stream (one image, or a batch of consecutive frames
        in temporal order).

        Multi-frame models match each frame against the one before it: the previous call's
        last frame for the first of the batch; none right after :meth:`reset` (or the first
        call), which gives the single-frame fallback. Single-frame models just predict.
        """
        batch, single = load_images(frames)
        in_size = tuple(batch.shape[-2:])
        x = self._to_network(batch)
        if not self.multi_frame:
            return self._arrays(self._outputs(self._sigmoid(x, None, None), in_size), single)
        first = self._last if self._last is not None else torch.zeros_like(x[:1])
        prev = torch.cat([first, x[:-1]])
        out = self._outputs(self._sigmoid(x, prev, self.pixel_intrinsics(intrinsics)), in_size)
        self._last = x[-1:].clone()
        return self._arrays(out, single)

    def stream(self, frames: Iterable[ImageLike], intrinsics: IntrinsicsLike | None = None
               ) -> Iterator[DepthPrediction]:
        """:meth:`reset`, then :meth:`predict_next` on every frame of ``frames``, lazily."""
        self.reset()
        for frame in frames:
            yield self.predict_next(frame, intrinsics)

    # ------------------------------------------------------------------ teacher
    @torch.no_grad()
    def predict_teacher(self, images: ImageLike | Sequence[ImageLike]) -> DepthPrediction:
        """The single-frame teacher's depth of a multi-frame model (ManyDepth's ``mono``
        network, what its cost volume is trained against), same conventions as :meth:`predict`.

        Raises:
            ValueError: the model is single-frame (it has no teacher).
        """
        if not self.multi_frame:
            raise ValueError(f'DepthPredictor: {type(self.model).__name__} is a single-frame '
                             f'model without a teacher; use predict()')
        batch, single = load_images(images)
        teacher = self.model.teacher
        sigmoid = teacher.predict_disparities(self._to_network(batch))[0]
        return self._arrays(self._outputs(sigmoid, tuple(batch.shape[-2:]), teacher), single)
