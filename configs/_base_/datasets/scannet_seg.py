# ScanNet v2 semantic segmentation (ScanNet20 by default; set label_set='scannet200' and
# num_classes=200 for ScanNet200). Processed files come from data_converters/scannet.py.
dataset_type = 'ScanNetDataset'
data_root = 'data/scannet'
label_set = 'scannet20'
grid_size = 0.02

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
    dict(type='SphereCrop', point_max=100000, mode='random'),
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

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='point_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', label_set=label_set,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='point_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', label_set=label_set,
                 pipeline=val_pipeline, test_mode=True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='SemSegMetric', ignore_index=-1)
test_evaluator = val_evaluator
