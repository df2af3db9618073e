# KITTI raw for self-supervised monocular depth (Monodepth2's data set-up).
# Convert first (see README, "Depth"):
#   python data_converters/kitti.py --root KITTI_RAW --out data/kitti --split eigen_zhou \
#       --split-dir MONODEPTH2_SPLITS
#   python data_converters/kitti.py --root KITTI_RAW --out data/kitti --split eigen \
#       --split-dir MONODEPTH2_SPLITS
# Training: eigen_zhou train (39,810 frames, both cameras), frames [0, -1, 1], 640x192, flip
# and colour jitter drawn once per sample. Test: the Eigen split (697 frames, velodyne ground
# truth at the raw size) with the Garg crop, 80 m cap and per-image median scaling.
dataset_type = 'KITTIRawDataset'
data_root = 'data/kitti'
height, width = 192, 640
frame_ids = (0, -1, 1)
num_scales = 4

train_dataloader = dict(
    batch_size=12, num_workers=12, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='splits/eigen_zhou/train_info.json', frame_ids=frame_ids,
                 height=height, width=width, num_scales=num_scales))

# evaluation loads the target frame only (test frames need no neighbours)
test_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='splits/eigen/test_info.json',
                 frame_ids=(0,), height=height, width=width, num_scales=1, test_mode=True,
                 gt_depth_file='auto'))
test_evaluator = dict(type='DepthMetric', eval_split='eigen', min_depth=1e-3, max_depth=80.0,
                      median_scaling=True)
test_cfg = dict(type='TestLoop')
