# CACR (contrastive attraction + repulsion) on the embedded digits demo (CPU-sized; see
# simclr_digits.py) with the paper's 4 views per image; batch 64 keeps the images per step of
# the 2-view configs.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

num_views = 4
train_pipeline = [
    dict(type='MultiViewImages', pipelines=[{{_base_.view_pipeline}}], num_views=num_views),
    dict(type='PackImageViews', meta_keys=('gt_label', 'sample_idx')),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
model = dict(
    type='CACR',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2),
    loss=dict(type='CACRLoss', alpha=1.0, beta=1.0, tau_pos=1.0, tau_neg=0.9,
              gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
