# ScatSimCLR (SimCLR + rotation pretext, lambda 0.3) on a scattering backbone, digits demo.
# CPU-sized: J = 2, L = 4 orientations (the paper: L = 16) and a 2 + 2-block adapter (32 -> 64
# channels, pool 4: 1024-D features) instead of ScatSimCLR-8. Needs kymatio. Probe with
#   python tools/linear_probe.py configs/linear_probe_digits_scatnet.py \
#       --checkpoint work_dirs/scatsimclr_digits/epoch_40.pth
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

scatnet_backbone = dict(type='ScatNetBackbone', image_size={{_base_.image_size}}, J=2, L=4,
                        stem_channels=32, stages=((32, 2), (64, 2)), pool_size=4)
model = dict(
    type='ScatSimCLR',
    backbone=scatnet_backbone,
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2),
    loss=dict(type='NTXentLoss', temperature=0.5, gather_distributed=True),
    pretext_weight=0.3,
    data_preprocessor={{_base_.data_preprocessor}})
