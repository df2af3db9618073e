# GroCo (learning by sorting, diffsort's relaxed sorting network) on the embedded digits demo
# (CPU-sized; see simclr_digits.py): 2 views, the 10 hardest negatives per anchor.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='GroCo',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=512, num_layers=3),
    loss=dict(type='GroCoLoss', topk_neg=10, steepness=1.0, gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
