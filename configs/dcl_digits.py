# DCL (decoupled contrastive learning) on the embedded digits demo (CPU-sized; see
# simclr_digits.py).
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='DCL',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2),
    loss=dict(type='DCLLoss', temperature=0.2, gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
