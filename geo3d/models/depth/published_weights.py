"""Published Monodepth2 / ManyDepth weights -> state dicts of geo3d's depth networks.

Monodepth2 (Godard et al., ICCV 2019, `nianticlabs/monodepth2`) saves one ``.pth`` per network,
each a plain ``state_dict`` of *its* module layout:

===================  ===========================================  ============================
file                 its keys                                      geo3d module (prefix)
===================  ===========================================  ============================
``encoder.pth``      ``encoder.<torchvision ResNet key>`` incl.    ``encoder``
                     the unused ``encoder.fc.*`` classifier, plus   (:class:`DepthResNetEncoder`)
                     metadata ``height``, ``width``, ``use_stereo``
``depth.pth``        ``decoder.<k>.conv.conv.{weight,bias}`` for   ``depth_decoder``
                     the 10 ConvBlocks, ``decoder.<k>.conv.*`` for  (:class:`DepthDecoder`)
                     the disparity heads (see below)
``pose_encoder.pth`` as ``encoder.pth`` with a 6-channel conv1,   ``pose_encoder``
                     no metadata                                    (``num_input_images=2``)
``pose.pth``         ``net.0`` (squeeze), ``net.1..3`` (convs)     ``pose_decoder``
                                                                    (:class:`PoseDecoder`)
===================  ===========================================  ============================

The depth decoder's ``decoder`` is an ``nn.ModuleList`` of an ``OrderedDict`` filled in the
order ``(upconv, 4, 0), (upconv, 4, 1), (upconv, 3, 0), ..., (upconv, 0, 1)`` and then
``(dispconv, s)`` for s in its ``scales`` (default 0..3): index ``2 (4 - i) + j`` is
``upconv{j}.{i}`` here and index ``10 + n`` is ``disp_heads.{scales[n]}``.

ManyDepth (Watson et al., CVPR 2021, `nianticlabs/manydepth`) saves the same layouts for its
single-frame teacher (``mono_encoder.pth``, ``mono_depth.pth``) and pose network
(``pose_encoder.pth``, ``pose.pth``); those load here as geo3d's single-frame ``encoder`` /
``depth_decoder`` and pose networks. Its ``encoder.pth``/``depth.pth`` hold the multi-frame
cost-volume encoder (``ResnetEncoderMatching``), which geo3d gets with a later issue; only the
metadata of ``encoder.pth`` (``height``, ``width``, ``min_depth_bin``, ``max_depth_bin``) is read.

Every file is read with ``torch.load(weights_only=True)``. Every key of every file must be
consumed (the classifier ``encoder.fc.*`` and the metadata keys are consumed by being dropped /
moved to ``meta``), and every parameter of the geo3d module must be provided with the right
shape; otherwise :class:`WeightConversionError` names the file and the keys. The one exception:
BatchNorm ``num_batches_tracked`` counters absent from a file (checkpoints from PyTorch < 0.4.1)
are set to 0 (they only matter with ``momentum=None``).

Verification against the reference code (not part of geo3d; done once, by hand): Monodepth2's
``ResnetEncoder`` (1 and 2 input images), ``DepthDecoder`` and ``PoseDecoder`` at commit b676244,
for ResNet-18 and ResNet-50, and ManyDepth's at commit a36212b (ResNet-18 teacher + pose net,
with its multi-frame ``encoder.pth`` for the metadata) were instantiated from their sources in a
scratch directory, randomly initialised (BatchNorm statistics and affine parameters randomised
too), saved in their trainers' file layouts (metadata included), converted here and loaded into
geo3d's modules. On the same 1x3x192x640 image (and a 1x6x192x640 pair for the pose nets), eval
mode, float32 on CPU, the maximum absolute difference was 0.0 for all five encoder maps, the four
disparities, axis-angle and translation (bit-identical outputs) in every case. Parameter counts
agree too (ResNet-18: encoder 11,176,512 without the classifier, depth decoder 3,152,724, pose
encoder 11,185,920, pose decoder 1,314,572). ManyDepth's multi-frame ``encoder.pth`` passed as
an encoder is refused with a message pointing to ``mono_encoder.pth``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from geo3d.models.backbones.depth_resnet import DepthResNetEncoder, encoder_channels
from geo3d.models.depth.decoders import DepthDecoder, PoseDecoder

__all__ = [
    'WeightConversionError', 'ConvertedWeights', 'read_weights_file', 'convert_resnet_encoder',
    'convert_depth_decoder', 'convert_pose_decoder', 'load_monodepth2_weights',
    'load_manydepth_weights', 'MODULE_NAMES',
]

#: geo3d's ``MonoDepth`` submodule names the converted state dicts are meant for.
MODULE_NAMES = ('encoder', 'depth_decoder', 'pose_encoder', 'pose_decoder')
#: non-tensor metadata their trainers put into the (multi-frame) encoder file.
METADATA_KEYS = ('height', 'width', 'use_stereo', 'min_depth_bin', 'max_depth_bin')
#: (blocks per layer, bottleneck?) -> ResNet depth (torchvision's definitions).
_RESNET_LAYOUTS = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34,
                   ((3, 4, 6, 3), True): 50, ((3, 4, 23, 3), True): 101,
                   ((3, 8, 36, 3), True): 152}


class WeightConversionError(ValueError):
    """A published checkpoint does not match the expected layout (message names the file)."""


@dataclass
class ConvertedWeights:
    """geo3d state dicts per submodule plus what the files said about the model.

    Attributes:
        state_dicts: ``{'encoder': ..., 'depth_decoder': ..., ['pose_encoder': ...,
            'pose_decoder': ...]}``, each loadable with ``strict=True`` into the module built
            from ``module_configs[name]``.
        module_configs: constructor arguments (registry configs) of the matching modules.
        meta: source format, file names and metadata (``height``, ``width``, ``use_stereo``,
            ``min_depth_bin``, ``max_depth_bin`` where the files had them).
    """
    state_dicts: dict[str, dict[str, Tensor]]
    module_configs: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def flat_state_dict(self) -> dict[str, Tensor]:
        """One state dict with ``<module name>.`` prefixes (a ``MonoDepth`` model's keys)."""
        return {f'{name}.{k}': v for name, sd in self.state_dicts.items() for k, v in sd.items()}

    def build_modules(self) -> dict[str, nn.Module]:
        """The geo3d modules holding the converted weights (strict load).

        The modules are built on the ``meta`` device and take the converted tensors as their
        parameters (``load_state_dict(assign=True)``): no random initialisation is paid for,
        and the modules share memory with :attr:`state_dicts`.
        """
        from geo3d.registry import MODELS
        out = {}
        for name, sd in self.state_dicts.items():
            with torch.device('meta'):
                module = MODELS.build(dict(self.module_configs[name]))
            module.load_state_dict(sd, strict=True, assign=True)
            out[name] = module
        return out


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A published ``.pth`` state dict, read with ``torch.load(weights_only=True)`` on CPU."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path} does not exist')
    try:
        sd = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 (truncated file, pickle refused, not a zip ...)
        raise WeightConversionError(f'{path}: not a readable torch weights file ({err})') from err
    if not isinstance(sd, dict):
        raise WeightConversionError(f'{path}: expected a state dict, got {type(sd).__name__}')
    return sd


def _plain(value: Any) -> Any:
    """A metadata value as a plain Python number (0-d tensors and numpy scalars too)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    return value.item() if hasattr(value, 'item') and not isinstance(value, Tensor) else value


def _check_against(module: nn.Module, converted: dict[str, Tensor], source: str,
                   file_keys: Mapping[str, str]) -> dict[str, Tensor]:
    """Fill absent ``num_batches_tracked``; raise on missing / unexpected / mis-shaped keys.

    ``module`` is a template (usually on the ``meta`` device): only its keys and shapes count.
    ``file_keys`` maps each converted key back to the key in the file (for messages).
    """
    expected = module.state_dict()
    out = dict(converted)
    for k, v in expected.items():
        if k not in out and k.endswith('num_batches_tracked'):
            out[k] = torch.zeros(v.shape, dtype=v.dtype)
    missing = [k for k in expected if k not in out]
    unexpected = [file_keys.get(k, k) for k in out if k not in expected]
    if missing or unexpected:
        raise WeightConversionError(
            f'{source}: keys do not match {type(module).__name__}: '
            f'{len(missing)} missing (e.g. {missing[:4]}), {len(unexpected)} unexpected '
            f'(e.g. {unexpected[:4]})')
    for k, v in expected.items():
        if tuple(out[k].shape) != tuple(v.shape):
            raise WeightConversionError(
                f'{source}: {file_keys.get(k, k)} has shape {tuple(out[k].shape)}, '
                f'{type(module).__name__}.{k} needs {tuple(v.shape)}')
    return {k: out[k] for k in expected}


def _resnet_depth(keys: Sequence[str], source: str) -> int:
    blocks = []
    for layer in range(1, 5):
        ids = {int(m.group(1)) for k in keys if (m := re.match(rf'layer{layer}\.(\d+)\.', k))}
        blocks.append(len(ids))
    bottleneck = any(re.match(r'layer1\.0\.conv3\.', k) for k in keys)
    layout = (tuple(blocks), bottleneck)
    if layout not in _RESNET_LAYOUTS:
        raise WeightConversionError(f'{source}: not a torchvision ResNet encoder (blocks per '
                                    f'layer {tuple(blocks)}, bottleneck={bottleneck})')
    return _RESNET_LAYOUTS[layout]


def convert_resnet_encoder(sd: Mapping[str, Any], source: str = '<state dict>'
                           ) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """Monodepth2 ``ResnetEncoder`` state dict -> :class:`DepthResNetEncoder` state dict.

    ``encoder.<k>`` becomes ``<k>``; ``encoder.fc.*`` (the unused ImageNet classifier) is
    dropped; the metadata keys go to the returned ``meta``.

    Returns:
        (state dict, module config ``dict(type='DepthResNetEncoder', num_layers,
        num_input_images)``, metadata found in the file).
    """
    if any(k.startswith(('reduce_conv.', 'layer0.', 'prematching_conv.')) for k in sd):
        raise WeightConversionError(
            f'{source}: this is ManyDepth\'s multi-frame cost-volume encoder '
            f'(ResnetEncoderMatching), which geo3d does not have yet; for ManyDepth load its '
            f'single-frame teacher mono_encoder.pth / mono_depth.pth')
    meta = {k: _plain(sd[k]) for k in METADATA_KEYS if k in sd}
    converted: dict[str, Tensor] = {}
    file_keys: dict[str, str] = {}
    stray = []
    for k, v in sd.items():
        if k in meta or k.startswith('encoder.fc.'):
            continue
        if not k.startswith('encoder.') or not isinstance(v, Tensor):
            stray.append(k)
            continue
        converted[k[len('encoder.'):]] = v
        file_keys[k[len('encoder.'):]] = k
    if stray:
        raise WeightConversionError(
            f'{source}: {len(stray)} key(s) that a Monodepth2 ResnetEncoder file does not have '
            f'(e.g. {stray[:4]})')
    if 'conv1.weight' not in converted:
        raise WeightConversionError(f'{source}: no encoder.conv1.weight; not a Monodepth2 '
                                    f'ResnetEncoder state dict')
    num_layers = _resnet_depth(list(converted), source)
    in_ch = converted['conv1.weight'].shape[1]
    if in_ch % 3:
        raise WeightConversionError(f'{source}: conv1 takes {in_ch} channels, not 3 per image')
    cfg = dict(type='DepthResNetEncoder', num_layers=num_layers, num_input_images=in_ch // 3)
    with torch.device('meta'):  # only names and shapes are needed
        template = DepthResNetEncoder(num_layers=num_layers, num_input_images=in_ch // 3)
    return _check_against(template, converted, source, file_keys), cfg, meta


def convert_depth_decoder(sd: Mapping[str, Any], source: str = '<state dict>',
                          scales: Sequence[int] | None = None
                          ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Monodepth2 ``DepthDecoder`` state dict -> :class:`DepthDecoder` state dict.

    Args:
        sd: keys ``decoder.<index>.conv.conv.*`` (ConvBlocks 0..9) and ``decoder.<index>.conv.*``
            (disparity heads 10..).
        source: file name for messages.
        scales: the reference's ``scales`` in construction order; None means ``0..n-1`` for
            ``n`` heads (Monodepth2/ManyDepth train with 0..3).

    Returns:
        (state dict, module config ``dict(type='DepthDecoder', num_ch_enc, scales, ...)``).
    """
    heads = sorted({int(m.group(1)) for k in sd if (m := re.match(r'decoder\.(\d+)\.', k))
                    and int(m.group(1)) >= 10})
    if scales is None:
        scales = list(range(len(heads)))
    scales = [int(s) for s in scales]
    converted: dict[str, Tensor] = {}
    file_keys: dict[str, str] = {}
    stray = []
    for k, v in sd.items():
        m = re.fullmatch(r'decoder\.(\d+)\.conv\.(conv\.)?(weight|bias)', k)
        if m is None or not isinstance(v, Tensor):
            stray.append(k)
            continue
        idx, is_block, param = int(m.group(1)), m.group(2) is not None, m.group(3)
        if idx < 10 and is_block:
            level, j = 4 - idx // 2, idx % 2
            new = f'upconv{j}.{level}.conv.{param}'
        elif idx >= 10 and not is_block and idx - 10 < len(scales):
            new = f'disp_heads.{scales[idx - 10]}.conv.{param}'
        else:
            stray.append(k)
            continue
        converted[new] = v
        file_keys[new] = k
    if stray:
        raise WeightConversionError(
            f'{source}: {len(stray)} key(s) that a Monodepth2 DepthDecoder file does not have '
            f'(e.g. {stray[:4]})')
    try:
        # encoder channels from the input widths: upconv0.4 takes enc[4]; upconv1.i takes
        # dec[i] + enc[i-1]; decoder channels from the output widths of upconv0.i
        dec = [converted[f'upconv0.{i}.conv.weight'].shape[0] for i in range(5)]
        enc = [converted[f'upconv1.{i}.conv.weight'].shape[1] - dec[i] for i in range(1, 5)]
        enc.append(converted['upconv0.4.conv.weight'].shape[1])
        out_ch = converted[f'disp_heads.{scales[0]}.conv.weight'].shape[0]
    except (KeyError, IndexError) as err:
        raise WeightConversionError(f'{source}: incomplete Monodepth2 DepthDecoder state dict '
                                    f'(no {err})') from err
    cfg = dict(type='DepthDecoder', num_ch_enc=tuple(enc), scales=tuple(scales),
               num_output_channels=out_ch, decoder_channels=tuple(dec))
    with torch.device('meta'):
        template = DepthDecoder(num_ch_enc=enc, scales=scales, num_output_channels=out_ch,
                                decoder_channels=dec)
    return _check_against(template, converted, source, file_keys), cfg


def convert_pose_decoder(sd: Mapping[str, Any], source: str = '<state dict>'
                         ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Monodepth2 ``PoseDecoder`` state dict (``net.0..3``) -> :class:`PoseDecoder` state dict.

    ``net.0`` is the squeeze conv, ``net.1..3`` the convs 0..2.

    Returns:
        (state dict, module config ``dict(type='PoseDecoder', in_channels, num_input_features,
        num_frames_to_predict_for, stride=1)``; a stride other than 1 cannot be read from the
        weights and is not supported).
    """
    names = {0: 'squeeze', 1: 'convs.0', 2: 'convs.1', 3: 'convs.2'}
    converted: dict[str, Tensor] = {}
    file_keys: dict[str, str] = {}
    stray = []
    for k, v in sd.items():
        m = re.fullmatch(r'net\.(\d)\.(weight|bias)', k)
        if m is None or int(m.group(1)) not in names or not isinstance(v, Tensor):
            stray.append(k)
            continue
        new = f'{names[int(m.group(1))]}.{m.group(2)}'
        converted[new] = v
        file_keys[new] = k
    if stray:
        raise WeightConversionError(
            f'{source}: {len(stray)} key(s) that a Monodepth2 PoseDecoder file does not have '
            f'(e.g. {stray[:4]})')
    try:
        in_ch = converted['squeeze.weight'].shape[1]
        n_in = converted['convs.0.weight'].shape[1] // 256
        n_out = converted['convs.2.weight'].shape[0] // 6
    except KeyError as err:
        raise WeightConversionError(f'{source}: incomplete Monodepth2 PoseDecoder state dict '
                                    f'(no {err})') from err
    cfg = dict(type='PoseDecoder', in_channels=in_ch, num_input_features=n_in,
               num_frames_to_predict_for=n_out)
    with torch.device('meta'):
        template = PoseDecoder(in_channels=in_ch, num_input_features=max(n_in, 1),
                               num_frames_to_predict_for=max(n_out, 1))
    return _check_against(template, converted, source, file_keys), cfg


def _load(files: Mapping[str, str | os.PathLike[str] | None], source_format: str,
          scales: Sequence[int] | None) -> ConvertedWeights:
    if (files.get('pose_encoder') is None) != (files.get('pose_decoder') is None):
        raise ValueError('give both pose files (pose encoder and pose decoder) or neither')
    state_dicts: dict[str, dict[str, Tensor]] = {}
    configs: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {'source_format': source_format,
                            'files': {k: os.path.basename(os.fspath(v))
                                      for k, v in files.items() if v is not None}}
    for name, path in files.items():
        if path is None:
            continue
        path = os.fspath(path)
        sd = read_weights_file(path)
        if name in ('encoder', 'pose_encoder'):
            state_dicts[name], configs[name], file_meta = convert_resnet_encoder(sd, path)
            if name == 'encoder':
                meta.update(file_meta)
        elif name == 'depth_decoder':
            state_dicts[name], configs[name] = convert_depth_decoder(sd, path, scales)
        else:
            state_dicts[name], configs[name] = convert_pose_decoder(sd, path)
    enc = configs['encoder']
    dec_in = encoder_channels(enc['num_layers'])
    if tuple(configs['depth_decoder']['num_ch_enc']) != dec_in:
        raise WeightConversionError(
            f'{files["depth_decoder"]}: decoder expects encoder channels '
            f'{configs["depth_decoder"]["num_ch_enc"]}, but {files["encoder"]} is a '
            f'ResNet-{enc["num_layers"]} with {dec_in}')
    return ConvertedWeights(state_dicts, configs, meta)


def load_monodepth2_weights(encoder_path: str | os.PathLike[str],
                            depth_path: str | os.PathLike[str],
                            pose_encoder_path: str | os.PathLike[str] | None = None,
                            pose_path: str | os.PathLike[str] | None = None,
                            scales: Sequence[int] | None = None) -> ConvertedWeights:
    """Monodepth2's ``encoder.pth``, ``depth.pth`` [, ``pose_encoder.pth``, ``pose.pth``].

    The pose files are optional (stereo-only models have none) but go together. ``meta`` gets
    ``height``, ``width`` and ``use_stereo`` from ``encoder.pth``.

    Raises:
        FileNotFoundError: a given file does not exist.
        WeightConversionError: a file is unreadable or its keys / shapes do not match
            (message names the file).
    """
    return _load({'encoder': encoder_path, 'depth_decoder': depth_path,
                  'pose_encoder': pose_encoder_path, 'pose_decoder': pose_path},
                 'monodepth2', scales)


def load_manydepth_weights(mono_encoder_path: str | os.PathLike[str],
                           mono_depth_path: str | os.PathLike[str],
                           pose_encoder_path: str | os.PathLike[str] | None = None,
                           pose_path: str | os.PathLike[str] | None = None,
                           encoder_path: str | os.PathLike[str] | None = None,
                           scales: Sequence[int] | None = None) -> ConvertedWeights:
    """ManyDepth's single-frame teacher and pose network as geo3d's single-frame networks.

    ``mono_encoder.pth`` / ``mono_depth.pth`` become ``encoder`` / ``depth_decoder``;
    ``pose_encoder.pth`` / ``pose.pth`` the pose networks. ``encoder_path`` (ManyDepth's
    multi-frame ``encoder.pth``) is optional and only its metadata is read (``height``,
    ``width``, ``min_depth_bin``, ``max_depth_bin``): the multi-frame cost-volume encoder itself
    comes with a later issue.
    """
    out = _load({'encoder': mono_encoder_path, 'depth_decoder': mono_depth_path,
                 'pose_encoder': pose_encoder_path, 'pose_decoder': pose_path},
                'manydepth', scales)
    if encoder_path is not None:
        sd = read_weights_file(encoder_path)
        found = {k: _plain(sd[k]) for k in METADATA_KEYS if k in sd}
        if not found:
            raise WeightConversionError(f'{encoder_path}: no metadata ({", ".join(METADATA_KEYS)})'
                                        f'; is it ManyDepth\'s encoder.pth?')
        out.meta.update(found)
        out.meta['files']['multi_frame_encoder'] = os.path.basename(os.fspath(encoder_path))
    return out
