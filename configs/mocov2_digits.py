# MoCo v2 on the embedded digits demo (CPU-sized; see simclr_digits.py): momentum key encoder,
# a queue of 512 keys (under half the 1197 training images), InfoNCE at temperature 0.2.
# The paired baseline of mochi_digits.py (same budget, no mixing).
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='MoCoV2',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2,
              with_bn=False),
    loss=dict(type='MoCHiLoss', temperature=0.2, num_mix=0, num_query_mix=0),
    queue_size=512,
    momentum=0.99,
    data_preprocessor={{_base_.data_preprocessor}})
