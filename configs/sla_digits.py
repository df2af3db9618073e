# SLA (self-supervised label augmentation: joint class x rotation labels) on the digits demo.
# SUPERVISED: it trains on the labels of the 1197 training images; one augmented view per image,
# rotated by 0/90/180/270 degrees inside the model.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

train_pipeline = [
    dict(type='MultiViewImages', pipelines=[{{_base_.view_pipeline}}], num_views=1),
    dict(type='PackImageViews', meta_keys=('gt_label', 'sample_idx')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    type='SLA',
    backbone={{_base_.digits_backbone}},
    num_classes=10,
    self_distill=False,
    data_preprocessor={{_base_.data_preprocessor}})
