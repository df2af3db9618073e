"""``MonoDepth``: the Monodepth2 single-frame self-supervised depth model.

Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(github.com/nianticlabs/monodepth2, ``trainer.py``), assembled from geo3d's parts:

* depth branch: :class:`~geo3d.models.backbones.DepthResNetEncoder` on the target frame 0 ->
  :class:`~geo3d.models.depth.DepthDecoder` -> sigmoid disparities at the output scales;
* pose branch ("separate_resnet"): a 2-frame (6-channel) ResNet encoder and a
  :class:`~geo3d.models.depth.PoseDecoder` per source frame ``f``. The pair is stacked in
  temporal order, ``[I_f, I_0]`` for ``f < 0`` and ``[I_0, I_f]`` for ``f > 0``; the first
  predicted pose is turned into a matrix and inverted for ``f < 0``, so ``('T', f)`` is always
  the target -> source transform. A stereo source ``'s'`` uses the known ``stereo_T``;
* loss: :class:`~geo3d.models.depth.MonocularDepthLoss` (min-reprojection, auto-masking,
  smoothness; all scales at full resolution).

The networks see the colour-*augmented* images (``color_aug``), the loss compares the
*un-augmented* ones (``color``), as Monodepth2. ``predict`` and ``tensor`` run only the depth
branch.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor

from geo3d.registry import MODELS
from geo3d.structures.camera import disp_to_depth, pose_vec_to_matrix

__all__ = ['MonoDepth', 'STEREO_FRAME_ID']

STEREO_FRAME_ID = 's'


def _merge(default: dict, cfg: dict | None) -> dict:
    """``default`` updated by ``cfg``; a ``cfg`` of another ``type`` replaces it (the default
    arguments belong to the default type, e.g. no ``num_layers`` for a LiteMonoEncoder)."""
    cfg = copy.deepcopy(dict(cfg or {}))
    if 'type' in cfg and cfg['type'] != default.get('type'):
        return cfg
    out = copy.deepcopy(default)
    out.update(cfg)
    return out


def _fill(cfg: dict, key: str, value: Any, owner: str) -> None:
    """``cfg[key] = value`` unless it is set to something else (then a clear error)."""
    if key in cfg and cfg[key] is not None:
        given = tuple(cfg[key]) if isinstance(cfg[key], (list, tuple)) else cfg[key]
        want = tuple(value) if isinstance(value, (list, tuple)) else value
        if given != want:
            raise ValueError(f'MonoDepth: {owner}.{key}={cfg[key]!r} disagrees with the model '
                             f'({want!r}); leave it out, the model sets it')
    cfg[key] = value


@MODELS.register_module()
class MonoDepth(BaseModel):
    """Monodepth2: depth and pose networks trained by view synthesis (see the module doc).

    Args:
        encoder: depth encoder config (default ResNet-18, random init; set
            ``pretrained=True`` or a path to torchvision's ImageNet ``.pth`` as Monodepth2; the
            ImageNet weights are loaded by :meth:`init_weights`, which the runner calls before
            training, not at construction).
        depth_decoder: depth decoder config; ``num_ch_enc`` and ``scales`` are filled in.
        pose_encoder: pose encoder config (``num_input_images=2`` is filled in).
        pose_decoder: pose decoder config (``in_channels`` and one input feature set are filled
            in; 2 predicted frames as Monodepth2). The pose networks are built when
            ``frame_ids`` has a temporal source or ``pose_encoder`` is given; stereo-only
            training (``frame_ids=(0, 's')``) has none by default.
        loss: :class:`MonocularDepthLoss` config; ``scales``, ``frame_ids``, ``min_depth`` and
            ``max_depth`` are filled in from the model.
        frame_ids: target ``0`` first, then the sources: temporal offsets and/or ``'s'``; must
            be the dataset's ``frame_ids`` (same order, checked against the batch metadata).
        scales: decoder output scales (Monodepth2: 0..3).
        min_depth, max_depth: the range of ``disp_to_depth`` (0.1, 100).
        data_preprocessor: default :class:`MultiFrameDataPreprocessor`.
        init_cfg: mmengine init config.

    Submodules: ``encoder``, ``depth_decoder``, ``pose_encoder``, ``pose_decoder``, ``loss``
    (no parameters), as the converted published weights (``tools/convert_depth_weights.py``).

    Inputs (``forward(inputs, data_samples, mode)``): ``inputs`` is the dataset's dict,
    ``color`` / ``color_aug`` lists over S scales of (B, F, 3, H_s, W_s) in [0, 1] with F =
    ``len(frame_ids)``, ``K`` / ``inv_K`` (B, S, 4, 4) pixel intrinsics per scale, and
    ``stereo_T`` (B, 4, 4) with ``'s'``. For ``predict`` / ``tensor`` a bare (B, 3, H, W) image
    batch in [0, 1] is accepted too. H and W must be divisible by 32.

    Modes:
        ``loss``: the loss dict of :class:`MonocularDepthLoss` (``loss`` plus detached
        per-scale terms).
        ``predict``: one dict per sample: ``pred_disp`` (1, H, W) the scaled disparity
        (first output of ``disp_to_depth``, in [1/max_depth, 1/min_depth]) at the network's
        resolution, plus the sample's ``gt_depth`` (when the batch has it), ``img_path`` (the
        target image) and the sample's metainfo; what :class:`~geo3d.evaluation.DepthMetric`
        reads.
        ``tensor``: ``{s: (B, 1, H / 2**s, W / 2**s)}`` sigmoid disparities.
    """

    def __init__(self, encoder: dict | None = None, depth_decoder: dict | None = None,
                 pose_encoder: dict | None = None, pose_decoder: dict | None = None,
                 loss: dict | None = None, frame_ids: Sequence[int | str] = (0, -1, 1),
                 scales: Sequence[int] = (0, 1, 2, 3), min_depth: float = 0.1,
                 max_depth: float = 100.0, data_preprocessor: dict | Any | None = None,
                 init_cfg: dict | None = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='MultiFrameDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.frame_ids = self._check_frame_ids(frame_ids)
        self.source_ids = [f for f in self.frame_ids if f != 0]
        self.temporal_ids = [f for f in self.source_ids if f != STEREO_FRAME_ID]
        self.scales = tuple(int(s) for s in scales)
        if not 0 < min_depth < max_depth:
            raise ValueError(f'MonoDepth: need 0 < min_depth < max_depth, got {min_depth}, '
                             f'{max_depth}')
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

        # ImageNet weights are loaded by init_weights() (the runner calls it before training),
        # so evaluation and inference from a checkpoint never download them
        self._imagenet: dict[str, str | None] = {}
        self.encoder = MODELS.build(self._defer_pretrained(
            'encoder', _merge(dict(type='DepthResNetEncoder', num_layers=18), encoder)))
        dec = _merge(dict(type='DepthDecoder'), depth_decoder)
        _fill(dec, 'num_ch_enc', tuple(self.encoder.num_ch_enc), 'depth_decoder')
        _fill(dec, 'scales', self.scales, 'depth_decoder')
        self.depth_decoder = MODELS.build(dec)

        # the pose networks exist when a temporal source needs them (or are asked for)
        self.pose_encoder = self.pose_decoder = None
        if self.temporal_ids or pose_encoder is not None:
            penc = _merge(dict(type='DepthResNetEncoder', num_layers=18), pose_encoder)
            _fill(penc, 'num_input_images', 2, 'pose_encoder')
            self.pose_encoder = MODELS.build(self._defer_pretrained('pose_encoder', penc))
            pdec = _merge(dict(type='PoseDecoder', num_frames_to_predict_for=2), pose_decoder)
            _fill(pdec, 'in_channels', self.pose_encoder.num_ch_enc[-1], 'pose_decoder')
            _fill(pdec, 'num_input_features', 1, 'pose_decoder')
            self.pose_decoder = MODELS.build(pdec)

        loss_cfg = _merge(dict(type='MonocularDepthLoss'), loss)
        _fill(loss_cfg, 'scales', self.scales, 'loss')
        _fill(loss_cfg, 'frame_ids', self.frame_ids, 'loss')
        _fill(loss_cfg, 'min_depth', self.min_depth, 'loss')
        _fill(loss_cfg, 'max_depth', self.max_depth, 'loss')
        self.loss = MODELS.build(loss_cfg)

    # ------------------------------------------------------------------ weights
    def _defer_pretrained(self, name: str, cfg: dict) -> dict:
        """Remember the encoder's ``pretrained`` (True or a path) and build it without."""
        pretrained = cfg.get('pretrained', False)
        if pretrained:
            self._imagenet[name] = None if pretrained is True else str(pretrained)
        return dict(cfg, pretrained=False)

    def init_weights(self) -> None:
        """mmengine's weight initialisation, then the ImageNet weights of the encoders that
        asked for them (``pretrained=True``: torchvision's download; a path: that file)."""
        super().init_weights()
        for name, path in self._imagenet.items():
            getattr(self, name).load_imagenet(path)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_frame_ids(frame_ids: Sequence[int | str]) -> tuple[int | str, ...]:
        out: list[int | str] = []
        for f in frame_ids:
            if f == STEREO_FRAME_ID:
                out.append(STEREO_FRAME_ID)
            elif isinstance(f, int) and not isinstance(f, bool):
                out.append(int(f))
            else:
                raise ValueError(f"MonoDepth: frame_ids must be integers or 's', got {f!r}")
        if not out or out[0] != 0 or len(out) < 2 or len(set(out)) != len(out):
            raise ValueError(f'MonoDepth: frame_ids must start with the target 0, hold at least '
                             f'one source and no duplicates, got {list(frame_ids)}')
        return tuple(out)

    def _frame_order(self, data_samples: Sequence[Any] | None, all_frames: bool = True
                     ) -> tuple:
        """The batch's frame order (from the samples' metainfo), checked against the model.

        ``all_frames``: the batch must hold exactly the model's frames (training); otherwise
        only the target 0 is needed (evaluation datasets may load frame 0 alone).
        """
        order = None
        for sample in data_samples or []:
            meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
            ids = meta.get('frame_ids') if isinstance(meta, Mapping) else None
            if ids is not None:
                order = tuple(ids)
                break
        if order is None:
            return self.frame_ids
        if not all_frames:
            if 0 not in order:
                raise ValueError(f'MonoDepth: the batch holds frames {list(order)}, without the '
                                 f'target frame 0')
            return order
        if set(order) != set(self.frame_ids) or len(order) != len(self.frame_ids):
            raise ValueError(f'MonoDepth: the batch holds frames {list(order)} but the model '
                             f'was built with frame_ids={list(self.frame_ids)}; use the same '
                             f'frame_ids for the dataset and the model')
        return order

    def _frames(self, inputs: Mapping, key: str, scale: int, order: tuple) -> dict:
        """``{frame id: (B, 3, H_s, W_s)}`` of ``inputs[key][scale]``."""
        pyramid = inputs.get(key)
        if pyramid is None:
            raise KeyError(f'MonoDepth: inputs have no {key!r} (keys {list(inputs)}); the '
                           f'dataset must pack color, color_aug, K and inv_K')
        if scale >= len(pyramid):
            raise ValueError(f'MonoDepth: inputs[{key!r}] has {len(pyramid)} scales, scale '
                             f'{scale} is needed')
        x = pyramid[scale]
        if not isinstance(x, Tensor) or x.dim() != 5 or x.shape[1] != len(order) \
                or x.shape[2] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f'MonoDepth: inputs[{key!r}][{scale}] must be (B, {len(order)}, 3, '
                             f'H, W) for frames {list(order)}, got {shape}')
        return {f: x[:, i] for i, f in enumerate(order)}

    @staticmethod
    def _intrinsics(inputs: Mapping, key: str) -> Tensor:
        m = inputs.get(key)
        if not isinstance(m, Tensor) or m.dim() != 4 or m.shape[-2:] != (4, 4):
            shape = tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__
            raise ValueError(f'MonoDepth: inputs[{key!r}] must be (B, S, 4, 4), got {shape}')
        return m[:, 0]

    # ------------------------------------------------------------------ networks
    def predict_disparities(self, images: Tensor) -> dict[int, Tensor]:
        """Depth branch: (B, 3, H, W) in [0, 1] -> ``{s: (B, 1, H/2**s, W/2**s)}`` sigmoids."""
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f'MonoDepth: images must be (B, 3, H, W) in [0, 1], got {shape}')
        return self.depth_decoder(self.encoder(images))

    def disp_to_depth(self, disp: Tensor) -> tuple[Tensor, Tensor]:
        """Sigmoid disparity -> (scaled disparity, depth) with the model's depth range."""
        return disp_to_depth(disp, self.min_depth, self.max_depth)

    def predict_poses(self, frames: Mapping, stereo_T: Tensor | None = None,
                      source_ids: Sequence[int | str] | None = None
                      ) -> dict[tuple[str, int | str], Tensor]:
        """``{('T', f): (B, 4, 4)}`` target -> source transforms for every source frame.

        Args:
            frames: ``{frame id: (B, 3, H, W)}`` network inputs (the augmented images); must
                hold 0 and every temporal source.
            stereo_T: (B, 4, 4) target -> stereo camera transform, needed with ``'s'``.
            source_ids: the sources to predict (default: the model's ``frame_ids`` sources).
        """
        poses: dict[tuple[str, int | str], Tensor] = {}
        for f in (self.source_ids if source_ids is None else source_ids):
            if f == STEREO_FRAME_ID:
                if stereo_T is None:
                    raise KeyError("MonoDepth: frame 's' needs inputs['stereo_T'] (the dataset "
                                   "packs it when 's' is in its frame_ids)")
                poses[('T', f)] = stereo_T
                continue
            pair = [frames[f], frames[0]] if f < 0 else [frames[0], frames[f]]
            features = self.pose_encoder(torch.cat(pair, 1))
            axisangle, translation = self.pose_decoder(features)
            poses[('T', f)] = pose_vec_to_matrix(axisangle[:, 0], translation[:, 0],
                                                 invert=f < 0)
        return poses

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self._loss(inputs, data_samples)
        if mode == 'predict':
            return self._predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_disparities(self._target_image(inputs, data_samples, 'color'))
        raise ValueError(f"MonoDepth: mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _target_image(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None,
                      key: str) -> Tensor:
        if isinstance(inputs, Tensor):
            return inputs
        if not isinstance(inputs, Mapping):
            raise TypeError(f'MonoDepth: inputs must be an image tensor (B, 3, H, W) or the '
                            f"dataset's dict, got {type(inputs).__name__}")
        return self._frames(inputs, key, 0, self._frame_order(data_samples, False))[0]

    def _loss(self, inputs: Mapping, data_samples: Sequence[Any] | None) -> dict[str, Tensor]:
        if not isinstance(inputs, Mapping):
            raise TypeError(f"MonoDepth: mode='loss' needs the dataset's dict of inputs, got "
                            f'{type(inputs).__name__}')
        order = self._frame_order(data_samples)
        aug = self._frames(inputs, 'color_aug', 0, order)
        disps = self.predict_disparities(aug[0])
        poses = self.predict_poses(aug, inputs.get('stereo_T'))
        colors = {('color', f, 0): img
                  for f, img in self._frames(inputs, 'color', 0, order).items()}
        for s in self.scales:
            if s > 0 and s < len(inputs['color']):
                colors[('color', 0, s)] = self._frames(inputs, 'color', s, order)[0]
        return self.loss({('disp', s): d for s, d in disps.items()}, colors, poses,
                         self._intrinsics(inputs, 'K'), self._intrinsics(inputs, 'inv_K'))

    def _predict(self, inputs: Tensor | Mapping, data_samples: Sequence[Any] | None
                 ) -> list[dict[str, Any]]:
        images = self._target_image(inputs, data_samples, 'color')
        scaled, _ = self.disp_to_depth(self.predict_disparities(images)[0])
        return self.pack_predictions(scaled, data_samples)

    def pack_predictions(self, scaled: Tensor, data_samples: Sequence[Any] | None
                         ) -> list[dict[str, Any]]:
        """(B, 1, H, W) scaled disparities -> one dict per sample (see ``predict`` above)."""
        if data_samples is not None and len(data_samples) != scaled.shape[0]:
            raise ValueError(f'MonoDepth: {len(data_samples)} data samples for a batch of '
                             f'{scaled.shape[0]} images')
        order = self._frame_order(data_samples, False) if data_samples else self.frame_ids
        out = []
        for i in range(scaled.shape[0]):
            item: dict[str, Any] = {}
            sample = data_samples[i] if data_samples is not None else None
            if sample is not None:
                meta = dict(sample.metainfo) if hasattr(sample, 'metainfo') else dict(sample)
                item.update(meta)
                gt = getattr(sample, 'gt_depth', None) if hasattr(sample, 'metainfo') \
                    else meta.get('gt_depth')
                if gt is not None:
                    item['gt_depth'] = gt
                mask = getattr(sample, 'gt_dynamic_mask', None) if hasattr(sample, 'metainfo') \
                    else meta.get('gt_dynamic_mask')
                if mask is not None:  # demo drives' moving objects (DepthMetric regions)
                    item['gt_dynamic_mask'] = mask
                paths = meta.get('image_paths')
                if paths:
                    item['img_path'] = paths[list(order).index(0)]
            item['pred_disp'] = scaled[i].detach()
            out.append(item)
        return out
