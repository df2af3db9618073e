# Masked Scene Modeling (configs/msm_scannet.py: Hermosilla et al., CVPR 2025) on outdoor LiDAR:
# nuScenes LIDAR_TOP key frames (train scenes, labels unused), converted with
#   python data_converters/nuscenes.py --root NUSCENES --version v1.0-trainval \
#       --out data/nuscenes --task lidar --workers 8 [--nsweeps 10]
# The MSM recipe (mask ratio 0.4, cross-view targets at every decoder level, EMA teacher
# 0.996 -> 1, AdamW 0.0015 / wd 0.05, batch 12) is msm_scannet.py's; what changes for outdoor
# scans, all [choice] (the paper pretrains on ScanNet only):
# * 5 cm voxels (Pointcept's nuScenes recipe; a LIDAR_TOP scan has ~34k points, ~25k voxels),
#   so the stride-16 bottleneck patches are 80 cm;
# * features (x, y, z, intensity / 255) as Pointcept's nuScenes semantic segmentation
#   (in_channels 4); add 'time' to feat_keys (in_channels 5) for multi-sweep clouds;
# * no colour augmentations (no colour); rotation about the vertical axis (z up in LIDAR_TOP);
# * each view is a random 20 000-point sphere crop of the scan (~60 %), so views overlap only
#   partly, as the ScanNet recipe's per-view crops;
# * 75 epochs of the 28k train key frames (~175k iterations at batch 12, about the paper's
#   ScanNet schedule of 1800 epochs x 100 iterations), 3 warm-up epochs.
_base_ = ['./msm_scannet.py']

dataset_type = 'NuScenesLidarDataset'
data_root = 'data/nuscenes/lidar'
grid_size = 0.05
crop_points = 20000

view_pipeline = [
    dict(type='SphereCrop', point_max=crop_points, mode='random'),
    dict(type='RandomRotate', angle=(-1, 1), axis='z', p=1.0),
    dict(type='RandomScale', scale=(0.9, 1.1)),
    dict(type='RandomFlip', p=0.5),
    dict(type='RandomJitter', sigma=0.005, clip=0.02),
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random',
         return_inverse=True, origin_keys=('index',)),
    dict(type='CenterShift', apply_z=False),
    dict(type='Collect', keys=('coord', 'grid_coord', 'index', 'inverse', 'origin_index'),
         feat_keys=('coord', 'strength')),
]
train_pipeline = [
    dict(type='MultiViewGenerator', view_pipeline=view_pipeline, num_views=2,
         keys=('coord', 'strength'), raw_coord=False),
]

model = dict(backbone=dict(in_channels=4))

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))

max_epochs = 75
warmup_epochs = 3
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
