# nuScenes CAM_FRONT for self-supervised monocular depth, md4all's set-up (Gasperini et al.,
# ICCV 2023): official train / val scenes, temporal context from the sample_data chain of key
# frames and sweeps (~12 Hz), the real camera intrinsics, evaluation on the val key frames with
# projected LIDAR_TOP ground truth capped at 80 m. Convert first (docs/datasets/nuscenes.md):
#   python data_converters/nuscenes.py --root NUSCENES --version v1.0-trainval \
#       --out data/nuscenes --task depth --workers 8 [--min-speed 0.5]
# Training: splits/train_info.json (key frames and sweeps with both neighbours), frames
# [0, -1, 1], 576x320 (16:9 like the 1600x900 images), flip and colour jitter drawn once per
# sample. Test: splits/val_info.json (all val key frames; night_val_info.json, day_val_info.json,
# rain_val_info.json for the conditions), ground truth at the native 1600x900, every pixel with
# a LiDAR point within 80 m (eval_split='none' + gt_max_depth), per-image median scaling.
dataset_type = 'NuScenesDepthDataset'
data_root = 'data/nuscenes/depth'
height, width = 320, 576
frame_ids = (0, -1, 1)
num_scales = 4

train_dataloader = dict(
    batch_size=12, num_workers=8, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='splits/train_info.json',
                 frame_ids=frame_ids, height=height, width=width, num_scales=num_scales))

# evaluation loads the target frame only
test_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='splits/val_info.json',
                 frame_ids=(0,), height=height, width=width, num_scales=1, test_mode=True,
                 gt_depth_file='auto', gt_max_depth=80.0))
test_evaluator = dict(type='DepthMetric', eval_split='none', min_depth=1e-3, max_depth=80.0,
                      median_scaling=True)
test_cfg = dict(type='TestLoop')
