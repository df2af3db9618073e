# `msm_scannet.py` sized for a 2-core CPU on the procedural demo rooms (data/scannet_demo):
# 5 cm voxels, the narrow U-Net of spunet_seg_scannet_demo.py, 100 epochs of 3 iterations (about
# 1.7 s per iteration single-threaded on an idle core: ~9 min). Everything else is the paper's
# recipe of msm_scannet.py (mask ratio 0.4, momentum 0.996 -> 1, cross-view targets at every
# decoder level). Measured with the cached linear probe of `make demo` on the demo val split:
# 20 epochs 0.171 (LayerNorm targets), 60 epochs 0.212, 100-epoch schedule at epoch 60 0.246,
# random init 0.111-0.117.
# Patches are still the bottleneck voxels (stride 16: 80 cm at 5 cm).
_base_ = ['./msm_scannet.py']

data_root = 'data/scannet_demo'
grid_size = 0.05
crop_points = 5000  # raw points per scene (about 4k voxels of 5 cm: most demo voxels hold 1 point)

view_pipeline = [
    dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
    dict(type='RandomScale', scale=(0.9, 1.1)),
    dict(type='RandomFlip', p=0.5),
    dict(type='RandomJitter', sigma=0.005, clip=0.02),
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random',
         return_inverse=True, origin_keys=('index',)),
    dict(type='CenterShift', apply_z=False),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'index', 'inverse', 'origin_index'),
         feat_keys=('color', 'normal')),
]
train_pipeline = [
    dict(type='CenterShift', apply_z=True),
    # one crop per scene, shared by both views: independent crops this small (a fifth of a
    # demo room each) would barely overlap, leaving few masked voxels a cross-view target
    dict(type='SphereCrop', point_max=crop_points, mode='random'),
    dict(type='MultiViewGenerator', view_pipeline=view_pipeline, num_views=2,
         keys=('coord', 'color', 'normal'), raw_coord=False),
]

model = dict(backbone=dict(base_channels=16, channels=(16, 32, 64, 64, 64, 32, 32, 32),
                           layers=(1, 1, 2, 2, 1, 1, 1, 1), bn_momentum=0.1))

train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

max_epochs = 100
warmup_epochs = 2
lr = 0.003
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=3),
                     checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2))
