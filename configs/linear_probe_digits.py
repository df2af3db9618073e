# Linear and k-NN probe of a frozen image backbone on the digits demo (held-out val / test):
#   python tools/linear_probe.py configs/linear_probe_digits.py \
#       --checkpoint work_dirs/simclr_digits/epoch_40.pth      # or `none` for a random backbone
# Features are extracted once without augmentation; a logistic regression is fitted on the
# 1197 training images (weight decay picked on val, test reported for it) and a k-NN (k 20,
# exp(sim / 0.07) votes) classifies val and test. The backbone must match the pre-training's
# (override with --cfg-options model.backbone...).
_base_ = ['./_base_/default_runtime.py']

image_size = 16  # as configs/_base_/datasets/digits_ssl.py
eval_pipeline = [dict(type='PackImageViews', meta_keys=('gt_label',))]
model = dict(
    type='ImageLinearProbe',
    # the digits configs' quarter-width ResNet-18 (configs/_base_/datasets/digits_ssl.py)
    backbone=dict(type='TimmBackbone', model_name='resnet18', channels=(16, 32, 64, 128),
                  stem_width=16, zero_init_last=False),
    num_classes=10,
    data_preprocessor=dict(type='ImageViewsDataPreprocessor', mean=(0.5, 0.5, 0.5),
                           std=(0.5, 0.5, 0.5)),
    weight_decay=[1e-4, 1e-3, 1e-2, 1e-1],
    max_iter=1000,
    knn_k=20,
    knn_temperature=0.07)


def _loader(split):
    return dict(batch_size=256, num_workers=0, collate_fn=dict(type='default_collate'),
                dataset=dict(type='DigitsDataset', split=split, image_size=image_size,
                             pipeline=eval_pipeline))


train_dataloader = _loader('train')
val_dataloader = _loader('val')
test_dataloader = _loader('test')
