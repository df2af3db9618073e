# Linear probe of a frozen SpUNet on ScanNet v2 (ScanNet20), MSM's protocol (Hermosilla et al.,
# CVPR 2025, Table 15): every U-Net level sampled trilinearly at each point's 2 cm voxel and
# concatenated (finest first), one linear layer, AdamW beta=(0.9, 0.95), wd 0.01, lr 0.01,
# cosine schedule, batch 8, 200 epochs with 2 warm-up epochs, crops of 120 000 points.
# Run: python tools/linear_probe.py configs/linear_probe_scannet.py --checkpoint CKPT|none
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/scannet_seg.py']

num_classes = 20
grid_size = 0.02
model = dict(
    type='LinearProbeSegmentor',
    num_classes=num_classes,
    ignore_index=-1,
    backbone_checkpoint=None,           # set by tools/linear_probe.py --checkpoint
    backbone=dict(type='SpUNet', in_channels=6, base_channels=32,
                  channels=(32, 64, 128, 256, 256, 128, 96, 96), layers=(2, 3, 4, 6, 2, 2, 2, 2)),
    sampler=dict(type='MultiResolutionSampler', mode='trilinear', levels=None),
    feat_norm='none',
)

train_pipeline = [
    dict(type='CenterShift', apply_z=True),
    dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
    dict(type='RandomScale', scale=(0.9, 1.1)),
    dict(type='RandomFlip', p=0.5),
    dict(type='RandomJitter', sigma=0.005, clip=0.02),
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random'),
    dict(type='SphereCrop', point_max=120000, mode='random'),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'segment'), feat_keys=('color', 'normal')),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))

max_epochs = 200
warmup_epochs = 2
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.01, betas=(0.9, 0.95), weight_decay=0.01),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2,
                                     save_best='seg/mIoU', rule='greater'))

# `tools/linear_probe.py ... --cached` (offline probe on cached features, no augmentation)
cached_probe = dict(epochs=100, batch_size=8192, lr=0.01, weight_decay=0.01, warmup_epochs=2,
                    points_per_scene=4000, class_balanced=False, seed=0)
