# `gaussian2scene_stage1_scannet.py` sized for a 2-core CPU on the procedural demo rooms with
# RGB-D frames (data/scannet_frames: `tools/make_demo_data.py --frames 30` + `data_converters/
# scannet.py --frames-every 1`): 5 cm voxels and the narrow U-Net of msm_scannet_demo.py,
# 3 frames of 80x64 per scene with patch 8 (8 x 10 patches), a tiny ViT (64-d, depth 2).
# Everything else (mask ratios 0.6, RGB + inverse depth, colour targets, InfoNCE T = 0.07,
# loss weights) is the reference config's. One iteration costs ~0.8x one of msm_scannet_demo.py
# (measured side by side), i.e. ~1.3 s on an idle core: 100 epochs of 3 iterations ~6.5 min.
_base_ = ['./gaussian2scene_stage1_scannet.py']

data_root = 'data/scannet_frames'
grid_size = 0.05
image_size = (64, 80)           # (H, W) = 80x64 frames (stored 160x120, resized on load)
patch_size = 8
frames_per_sample = 3

point_pipeline = [
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random'),
    # a demo room has ~23k voxels of 5 cm; 8k (about a third of the room, around a random
    # voxel) keep an iteration near the MSM demo's cost. The crop keeps coordinates: frames
    # that look elsewhere just contribute no correspondences
    dict(type='SphereCrop', point_max=8000, mode='random'),
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'color', 'normal'),
         feat_keys=('color', 'normal')),
]

model = dict(
    backbone=dict(base_channels=16, channels=(16, 32, 64, 64, 64, 32, 32, 32),
                  layers=(1, 1, 2, 2, 1, 1, 1, 1), bn_momentum=0.1),
    image_encoder=dict(img_size=image_size, patch_size=patch_size, embed_dim=64, depth=2,
                       num_heads=4),
    image_mae=dict(decoder_dim=64, decoder_depth=1, decoder_heads=4),
    # 4 voxels of 5 cm = 20 cm patches (the reference's 16 cm, rounded to this grid)
    point_mask=dict(patch_stride=4),
    # 5 cm voxels hold a point anywhere in the cell: a looser visibility test
    align=dict(dim=64, hidden=128, depth_tol=0.1, max_pairs=2048),
)

train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, frames_per_sample=frames_per_sample,
                 image_size=image_size, point_pipeline=point_pipeline))

max_epochs = 100   # 300 iterations: ~6.5 min on one idle core (docs/gaussian2scene.md)
warmup_epochs = 3
lr = 2e-3
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
