# Linear probe on the procedural demo rooms (data/scannet_demo), CPU-sized: 5 cm voxels, the
# narrow U-Net of configs/spunet_seg_scannet_demo.py (probe its checkpoint, or `none` for the
# random-backbone baseline), a few epochs.
# Run: python tools/linear_probe.py configs/linear_probe_scannet_demo.py \
#          --checkpoint work_dirs/spunet_seg_scannet_demo/best_seg_mIoU_epoch_20.pth
_base_ = ['./linear_probe_scannet.py']

data_root = 'data/scannet_demo'
grid_size = 0.05

model = dict(backbone=dict(base_channels=16, channels=(16, 32, 64, 64, 64, 32, 32, 32),
                           layers=(1, 1, 2, 2, 1, 1, 1, 1), bn_momentum=0.1))

train_pipeline = [
    dict(type='CenterShift', apply_z=True),
    dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
    dict(type='RandomScale', scale=(0.9, 1.1)),
    dict(type='RandomFlip', p=0.5),
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random'),
    dict(type='SphereCrop', point_max=12000, mode='random'),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'segment'), feat_keys=('color', 'normal')),
]
val_pipeline = [
    dict(type='CenterShift', apply_z=True),
    dict(type='GridSample', grid_size=grid_size, mode='test', sample='first',
         return_inverse=True),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'segment', 'inverse', 'origin_segment'),
         feat_keys=('color', 'normal')),
]
train_dataloader = dict(batch_size=4, num_workers=1, persistent_workers=True,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline, loop=4))
val_dataloader = dict(batch_size=1, num_workers=1, persistent_workers=True,
                      dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader

max_epochs = 10
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=5),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                                     save_best='seg/mIoU', rule='greater'))

# `tools/linear_probe.py ... --cached`: features extracted once per training scene (the val
# pipeline above), 4000 random labelled voxels per scene, standardised linear layer fitted
# offline (what `make demo` runs: converged in seconds on a CPU, no augmentation).
cached_probe = dict(epochs=100, batch_size=4096, lr=0.01, weight_decay=0.01, warmup_epochs=2,
                    points_per_scene=4000, class_balanced=False, seed=0)
