"""Published Monodepth2 / ManyDepth checkpoints -> geo3d networks, and the converter CLI.

The "published" files are made here from geo3d's own randomly initialised modules, renamed into
Monodepth2's key layout with an explicit table written independently of the converter (the
converter computes the indices; the table below spells them out). Equivalence with the
reference *code* was checked by hand once (see geo3d/models/depth/published_weights.py).
"""
from __future__ import annotations

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

from geo3d.models.backbones.depth_resnet import DepthResNetEncoder
from geo3d.models.depth.decoders import DepthDecoder, PoseDecoder
from geo3d.models.depth.published_weights import (WeightConversionError, convert_depth_decoder,
                                                  load_manydepth_weights,
                                                  load_monodepth2_weights)
from geo3d.utils.checkpoint import load_checkpoint_file
from tests.helpers.tools import load_tool

# Monodepth2's DepthDecoder: nn.ModuleList over an OrderedDict filled as (upconv, 4, 0),
# (upconv, 4, 1), (upconv, 3, 0), ..., (upconv, 0, 1), then (dispconv, 0..3); a ConvBlock
# holds a Conv3x3 (``.conv``) which holds the nn.Conv2d (``.conv``).
DECODER_TO_MONODEPTH2 = {
    'upconv0.4.conv': 'decoder.0.conv.conv', 'upconv1.4.conv': 'decoder.1.conv.conv',
    'upconv0.3.conv': 'decoder.2.conv.conv', 'upconv1.3.conv': 'decoder.3.conv.conv',
    'upconv0.2.conv': 'decoder.4.conv.conv', 'upconv1.2.conv': 'decoder.5.conv.conv',
    'upconv0.1.conv': 'decoder.6.conv.conv', 'upconv1.1.conv': 'decoder.7.conv.conv',
    'upconv0.0.conv': 'decoder.8.conv.conv', 'upconv1.0.conv': 'decoder.9.conv.conv',
    'disp_heads.0.conv': 'decoder.10.conv', 'disp_heads.1.conv': 'decoder.11.conv',
    'disp_heads.2.conv': 'decoder.12.conv', 'disp_heads.3.conv': 'decoder.13.conv',
}
# Monodepth2's PoseDecoder: nn.ModuleList [squeeze, (pose, 0), (pose, 1), (pose, 2)] named net.
POSE_TO_MONODEPTH2 = {'squeeze': 'net.0', 'convs.0': 'net.1', 'convs.1': 'net.2',
                      'convs.2': 'net.3'}


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def randomise(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 0.2 + (0.9 if 'running_var' in name
                                                                      else -0.1))
    return module.eval()


def encoder_to_monodepth2(sd: dict, meta: dict | None = None) -> dict:
    """Their ResnetEncoder wraps torchvision's ResNet as ``.encoder``, classifier included."""
    out = {f'encoder.{k}': v for k, v in sd.items()}
    out['encoder.fc.weight'] = torch.randn(1000, sd['layer4.1.conv2.weight'].shape[0])
    out['encoder.fc.bias'] = torch.randn(1000)
    out.update(meta or {})
    return out


def rename(sd: dict, table: dict) -> dict:
    out = {}
    for k, v in sd.items():
        module, param = k.rsplit('.', 1)
        out[f'{table[module]}.{param}'] = v
    return out


@pytest.fixture(scope='module')
def nets():
    return {'encoder': randomise(DepthResNetEncoder(18), 1),
            'depth_decoder': randomise(DepthDecoder(), 2),
            'pose_encoder': randomise(DepthResNetEncoder(18, num_input_images=2), 3),
            'pose_decoder': randomise(PoseDecoder(512), 4)}


def write_monodepth2(folder, nets, pose=True, prefix=''):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(encoder_to_monodepth2(nets['encoder'].state_dict(),
                                     dict(height=192, width=640, use_stereo=False)),
               folder / f'{prefix}encoder.pth')
    torch.save(rename(nets['depth_decoder'].state_dict(), DECODER_TO_MONODEPTH2),
               folder / f'{prefix}depth.pth')
    if pose:
        torch.save(encoder_to_monodepth2(nets['pose_encoder'].state_dict()),
                   folder / 'pose_encoder.pth')
        torch.save(rename(nets['pose_decoder'].state_dict(), POSE_TO_MONODEPTH2),
                   folder / 'pose.pth')
    return {k: folder / v for k, v in (('encoder', f'{prefix}encoder.pth'),
                                       ('depth', f'{prefix}depth.pth'),
                                       ('pose_encoder', 'pose_encoder.pth'), ('pose', 'pose.pth'))}


@pytest.fixture(scope='module')
def published(tmp_path_factory, nets):
    """Monodepth2's four files, written once for the module (read-only in the tests)."""
    return write_monodepth2(tmp_path_factory.mktemp('mono_640x192'), nets)


def manydepth_folder(folder, published):
    """ManyDepth's names for the same networks (links) plus a multi-frame encoder.pth."""
    folder.mkdir()
    for theirs, ours in (('mono_encoder.pth', 'encoder'), ('mono_depth.pth', 'depth'),
                         ('pose_encoder.pth', 'pose_encoder'), ('pose.pth', 'pose')):
        (folder / theirs).symlink_to(published[ours])
    torch.save({'layer0.0.weight': torch.zeros(64, 3, 7, 7),
                'reduce_conv.0.weight': torch.zeros(64, 160, 3, 3),
                'height': 192, 'width': 640, 'min_depth_bin': 0.12, 'max_depth_bin': 6.92},
               folder / 'encoder.pth')
    return folder


def assert_same_outputs(nets, modules):
    x = torch.rand(1, 3, 64, 96)
    pair = torch.rand(1, 6, 64, 96)
    with torch.no_grad():
        ref = nets['depth_decoder'](nets['encoder'](x))
        got = modules['depth_decoder'](modules['encoder'](x))
        for s in range(4):
            assert torch.equal(ref[s], got[s])
        if 'pose_encoder' in modules:
            a_ref, t_ref = nets['pose_decoder'](nets['pose_encoder'](pair))
            a, t = modules['pose_decoder'](modules['pose_encoder'](pair))
            assert torch.equal(a, a_ref) and torch.equal(t, t_ref)


def test_monodepth2_round_trip_is_exact(published, nets):
    f = published
    cw = load_monodepth2_weights(f['encoder'], f['depth'], f['pose_encoder'], f['pose'])
    assert cw.meta['height'] == 192 and cw.meta['width'] == 640
    assert cw.meta['use_stereo'] is False and cw.meta['source_format'] == 'monodepth2'
    assert cw.module_configs['pose_encoder'] == dict(type='DepthResNetEncoder', num_layers=18,
                                                     num_input_images=2)
    assert cw.module_configs['depth_decoder']['scales'] == (0, 1, 2, 3)
    for name, module in nets.items():   # every parameter and buffer, nothing else
        theirs = module.state_dict()
        assert cw.state_dicts[name].keys() == theirs.keys()
        assert all(torch.equal(cw.state_dicts[name][k], v) for k, v in theirs.items())
    modules = {k: m.eval() for k, m in cw.build_modules().items()}
    assert_same_outputs(nets, modules)
    flat = cw.flat_state_dict()
    assert {k.split('.')[0] for k in flat} == {'encoder', 'depth_decoder', 'pose_encoder',
                                               'pose_decoder'}


def test_manydepth_teacher_and_metadata(tmp_path, published, nets):
    d = manydepth_folder(tmp_path / 'KITTI_MR', published)
    cw = load_manydepth_weights(d / 'mono_encoder.pth', d / 'mono_depth.pth',
                                d / 'pose_encoder.pth', d / 'pose.pth',
                                encoder_path=d / 'encoder.pth')
    assert cw.meta['min_depth_bin'] == pytest.approx(0.12)
    assert cw.meta['max_depth_bin'] == pytest.approx(6.92)
    assert cw.meta['files']['encoder'] == 'mono_encoder.pth'
    assert_same_outputs(nets, {k: m.eval() for k, m in cw.build_modules().items()})
    with pytest.raises(WeightConversionError, match=r'encoder\.pth.*multi-frame.*mono_encoder'):
        load_manydepth_weights(d / 'encoder.pth', d / 'mono_depth.pth')


def test_every_key_must_be_consumed(tmp_path, published):
    f = published
    depth = torch.load(f['depth'], weights_only=True)
    extra = dict(depth, **{'decoder.14.conv.weight': torch.zeros(1, 16, 3, 3)})
    torch.save(extra, tmp_path / 'extra_depth.pth')
    with pytest.raises(WeightConversionError, match=r'extra_depth\.pth.*decoder\.14'):
        load_monodepth2_weights(f['encoder'], tmp_path / 'extra_depth.pth',
                                scales=(0, 1, 2, 3))
    stray = dict(depth, **{'optimizer_step': torch.tensor(3)})
    torch.save(stray, tmp_path / 'stray.pth')
    with pytest.raises(WeightConversionError, match=r'stray\.pth.*optimizer_step'):
        load_monodepth2_weights(f['encoder'], tmp_path / 'stray.pth')
    enc = torch.load(f['encoder'], weights_only=True)
    del enc['encoder.layer2.0.downsample.1.running_mean']
    torch.save(enc, tmp_path / 'short_encoder.pth')
    with pytest.raises(WeightConversionError,
                       match=r'short_encoder\.pth.*1 missing.*layer2\.0\.downsample\.1\.running'):
        load_monodepth2_weights(tmp_path / 'short_encoder.pth', f['depth'])
    enc = torch.load(f['encoder'], weights_only=True)
    enc['encoder.unknown.weight'] = torch.zeros(1)
    torch.save(enc, tmp_path / 'odd_encoder.pth')
    with pytest.raises(WeightConversionError, match=r'odd_encoder\.pth.*encoder\.unknown'):
        load_monodepth2_weights(tmp_path / 'odd_encoder.pth', f['depth'])


def test_shape_mismatch_and_bad_files(tmp_path, published):
    f = published
    pose = torch.load(f['pose'], weights_only=True)
    pose['net.2.weight'] = torch.zeros(256, 256, 1, 1)
    torch.save(pose, tmp_path / 'bad_pose.pth')
    with pytest.raises(WeightConversionError, match=r'bad_pose\.pth: net\.2\.weight has shape'):
        load_monodepth2_weights(f['encoder'], f['depth'], f['pose_encoder'],
                                tmp_path / 'bad_pose.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_monodepth2_weights(tmp_path / 'missing.pth', f['depth'])
    with pytest.raises(ValueError, match='both pose files'):
        load_monodepth2_weights(f['encoder'], f['depth'], f['pose_encoder'])
    (tmp_path / 'garbage.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(WeightConversionError, match='garbage.pth: not a readable'):
        load_monodepth2_weights(tmp_path / 'garbage.pth', f['depth'])
    torch.save([1, 2], tmp_path / 'list.pth')
    with pytest.raises(WeightConversionError, match='list.pth: expected a state dict'):
        load_monodepth2_weights(f['encoder'], tmp_path / 'list.pth')
    # a ResNet-50 decoder with a ResNet-18 encoder
    d50 = rename(DepthDecoder((64, 256, 512, 1024, 2048)).state_dict(), DECODER_TO_MONODEPTH2)
    torch.save(d50, tmp_path / 'depth50.pth')
    with pytest.raises(WeightConversionError, match=r'depth50\.pth.*ResNet-18'):
        load_monodepth2_weights(f['encoder'], tmp_path / 'depth50.pth')


def test_old_checkpoints_without_num_batches_tracked(tmp_path, published, nets):
    f = published
    enc = {k: v for k, v in torch.load(f['encoder'], weights_only=True).items()
           if not k.endswith('num_batches_tracked')}
    torch.save(enc, tmp_path / 'old_encoder.pth')
    cw = load_monodepth2_weights(tmp_path / 'old_encoder.pth', f['depth'])
    assert cw.state_dicts['encoder']['bn1.num_batches_tracked'] == 0
    assert 'pose_encoder' not in cw.state_dicts and cw.meta['width'] == 640
    assert_same_outputs(nets, {k: m.eval() for k, m in cw.build_modules().items()})


def test_three_scale_decoder_detected():
    dec = DepthDecoder(scales=(0, 1, 2))
    table = {k: v for k, v in DECODER_TO_MONODEPTH2.items() if k != 'disp_heads.3.conv'}
    sd, cfg = convert_depth_decoder(rename(dec.state_dict(), table), 'three.pth')
    assert cfg['scales'] == (0, 1, 2)
    DepthDecoder(**{k: v for k, v in cfg.items() if k != 'type'}).load_state_dict(sd)


class MonoDepthStub(nn.Module):
    """The submodule names the converted checkpoint is for (MonoDepth comes later)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = DepthResNetEncoder(18)
        self.depth_decoder = DepthDecoder()
        self.pose_encoder = DepthResNetEncoder(18, num_input_images=2)
        self.pose_decoder = PoseDecoder(512)


def test_cli_writes_a_loadable_geo3d_checkpoint(tmp_path, published, nets, capsys):
    tool = load_tool('convert_depth_weights')
    folder = str(published['encoder'].parent)
    out = tmp_path / 'ckpt' / 'monodepth2.pth'
    assert tool.main([folder, str(out)]) == 0
    assert 'trained at 640x192' in capsys.readouterr().out
    ckpt = load_checkpoint_file(str(out))   # geo3d's restricted (weights-only) loader
    assert ckpt['meta']['module_configs']['encoder']['num_layers'] == 18
    assert ckpt['meta']['height'] == 192
    model = MonoDepthStub().eval()
    load_checkpoint(model, str(out), map_location='cpu', strict=True)   # what load_from does
    assert_same_outputs(nets, dict(model.named_children()))
    # an existing output is kept unless --overwrite
    assert tool.main([folder, str(out)]) == 1
    assert 'exists' in capsys.readouterr().err
    assert tool.main([folder, str(out), '--overwrite', '--no-pose']) == 0
    assert not any(k.startswith('pose') for k in torch.load(out, weights_only=True)['state_dict'])


def test_cli_manydepth_autodetect_and_errors(tmp_path, published, capsys):
    tool = load_tool('convert_depth_weights')
    folder = manydepth_folder(tmp_path / 'KITTI_MR', published)
    out = tmp_path / 'manydepth.pth'
    assert tool.main([str(folder), str(out)]) == 0
    assert capsys.readouterr().out.startswith('manydepth: encoder')
    assert load_checkpoint_file(str(out))['meta']['source_format'] == 'manydepth'
    (folder / 'pose.pth').unlink()
    assert tool.main([str(folder), str(tmp_path / 'x.pth')]) == 1
    assert 'pose.pth is missing' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'nowhere'), str(tmp_path / 'y.pth')]) == 1
    assert 'nowhere is not a directory' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists() and not (tmp_path / 'y.pth').exists()
