# SimCLR on the embedded digits demo, CPU-sized (quarter-width ResNet-18, 16x16, 2 views,
# 40 epochs of 9 iterations: a few minutes on a 2-core CPU).
#   python tools/train.py configs/simclr_digits.py
#   python tools/linear_probe.py configs/linear_probe_digits.py \
#       --checkpoint work_dirs/simclr_digits/epoch_40.pth      # `--checkpoint none`: baseline
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='SimCLR',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2),
    loss=dict(type='NTXentLoss', temperature=0.5, gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
