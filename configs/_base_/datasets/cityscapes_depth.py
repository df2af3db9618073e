# Cityscapes video snippets for self-supervised depth (ManyDepth / ProDepth set-up).
# Convert first (docs/datasets/cityscapes.md):
#   python data_converters/cityscapes.py --root CITYSCAPES --out data/cityscapes --workers 8 \
#       --resize 1024x384
# (--resize stores the used frames cropped and resized as SfMLearner did: a training sample then
# loads ~5x faster than from the raw 2048x1024 PNGs, bench/bench_cityscapes_io.py; without it
# the dataset reads and crops the raw PNGs.)
# Training: every frame t of the train-city snippets with t-2 and t+2 (frame_ids (0, -1, 1) are
# offsets of sample_gap = 2 frames, as SfMLearner/ManyDepth), seeded random 90/10 snippet split
# (splits/auto/{train,val}_info.json), the ego-car hood (bottom 25 %) cropped, 512x192, flip and
# colour jitter drawn once per sample. Test: the 1525 annotated test frames (*_000019) with
# ground truth from the disparity maps (baseline * fx / d, full 1024x2048), evaluated as
# ManyDepth: GT bottom 25 % cut, centre crop [256:, 192:1856], 1e-3 < gt < 80, median scaling.
# Multi-frame models (ManyDepth, ProDepth) also need the previous frame at test time:
#   test_dataloader = dict(dataset=dict(frame_ids=(0, -1)))
# (in a config, or --cfg-options "test_dataloader.dataset.frame_ids=(0,-1)").
dataset_type = 'CityscapesSequenceDataset'
data_root = 'data/cityscapes'
height, width = 192, 512
frame_ids = (0, -1, 1)
test_frame_ids = (0,)
num_scales = 4

train_dataloader = dict(
    batch_size=12, num_workers=12, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='splits/auto/train_info.json',
                 frame_ids=frame_ids, height=height, width=width, num_scales=num_scales))

# evaluation: the target frame at one scale (frame_ids (0, -1) for multi-frame models)
test_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='splits/auto/test_info.json',
                 frame_ids=test_frame_ids, height=height, width=width, num_scales=1,
                 test_mode=True, gt_depth_dir='auto'))
test_evaluator = dict(type='DepthMetric', eval_split='cityscapes', min_depth=1e-3,
                      max_depth=80.0, median_scaling=True)
test_cfg = dict(type='TestLoop')
