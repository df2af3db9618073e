# `make demo`: the supervised SpUNet baseline on the procedural demo rooms (written in the raw
# ScanNet layout by tools/make_demo_data.py and converted by data_converters/scannet.py), sized
# for a 2-core CPU: 5 cm voxels, a narrower U-Net, a few minutes of training.
_base_ = ['./spunet_seg_scannet.py']

data_root = 'data/scannet_demo'
grid_size = 0.05

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

model = dict(backbone=dict(base_channels=16, channels=(16, 32, 64, 64, 64, 32, 32, 32),
                           layers=(1, 1, 2, 2, 1, 1, 1, 1), bn_momentum=0.1))

train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline, loop=4))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=0.1, pct_start=0.1, anneal_strategy='cos',
         div_factor=10.0, final_div_factor=100.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=5),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                                     save_best='seg/mIoU', rule='greater'))
