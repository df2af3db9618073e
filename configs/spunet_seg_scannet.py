# Supervised SpUNet semantic segmentation on ScanNet v2 (ScanNet20), the reference baseline
# of the data -> model -> runner -> metric path (Pointcept's SpUNet-v1m1 recipe: 2 cm voxels,
# SGD + OneCycle, 800 epochs of 1201 scenes at batch 12 there; here 100 epochs by default).
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/scannet_seg.py']

num_classes = 20
model = dict(
    type='PointSegmentor',
    num_classes=num_classes,
    ignore_index=-1,
    backbone=dict(type='SpUNet', in_channels=6, base_channels=32,
                  channels=(32, 64, 128, 256, 256, 128, 96, 96), layers=(2, 3, 4, 6, 2, 2, 2, 2)),
    head=dict(type='LinearSegHead'),
)

max_epochs = 100
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True),
)
param_scheduler = [
    # per-iteration one-cycle schedule over the whole run
    dict(type='OneCycleLR', eta_max=0.05, pct_start=0.05, anneal_strategy='cos',
         div_factor=10.0, final_div_factor=1000.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3,
                                     save_best='seg/mIoU', rule='greater'))
