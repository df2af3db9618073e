# Gaussian2Scene stage 2 (Liu, Yang, Fei, He, arXiv 2506.08777): the SpUNet predicts one 3D
# Gaussian per 2 cm voxel of a ScanNet scene; the Gaussians are rendered into the scene's posed
# RGB-D frames and supervised by the real frames (RGB L1 + SSIM, depth) and by the scene's
# surface (Gaussian centre -> nearest point). The paper publishes no code: its description
# plus UniPre3D (Wang et al. CVPR 2025, wangzy22/UniPre3D, configs/sparseunet_pretraining.yaml,
# configs/settings.yaml) are the specification; every line marked [choice] is where neither
# fixes the value. docs/gaussian2scene.md ("Stage 2").
#
# The two stages are chained through the backbone's checkpoint keys 'backbone.*':
#   1) python tools/train.py configs/gaussian2scene_stage1_scannet.py \
#          --work-dir work_dirs/g2s_stage1
#   2) python tools/train.py configs/gaussian2scene_scannet.py --work-dir work_dirs/g2s_stage2 \
#          --cfg-options load_from=work_dirs/g2s_stage1/epoch_400.pth
#   (load_from loads the stage-1 SpUNet by name, non-strictly: the image MAE and the point
#   heads of stage 1 are ignored, the Gaussian head starts from its initialisation)
#   then e.g. python tools/render_gaussians.py configs/gaussian2scene_scannet.py \
#          work_dirs/g2s_stage2/epoch_135.pth --out work_dirs/g2s_stage2/renders.png
#   and python tools/linear_probe.py configs/linear_probe_scannet.py \
#          --checkpoint work_dirs/g2s_stage2/epoch_135.pth
#
# Data: `python data_converters/scannet.py --root RAW --out data/scannet --frames-every 20`
# (posed RGB-D frames next to the points, in the same raw scan frame).
_base_ = ['./_base_/default_runtime.py']

data_root = 'data/scannet'
grid_size = 0.02               # Pointcept / MSM / UniPre3D ScanNet voxels (2 cm)
image_size = (120, 160)        # (H, W): UniPre3D renders ScanNet at 160x120
frames_per_sample = 8          # UniPre3D: 8 input images per scene and step
holdout_every = 10             # [choice] every 10th stored frame is a held-out view (val only)
val_frames = 8                 # held-out frames rendered per val scene (fixed, evenly spaced)

# The points must stay in the frames' world frame (raw scan coordinates): no rotation,
# scaling, flipping, jitter or centre shift -- they would move the Gaussians off the frames.
# Colour augmentations of the INPUT are allowed (the targets are the real frames), as stage 1.
train_point_pipeline = [
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    # one random point per voxel (its coordinate gives the voxel, floor(coord / grid_size))
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random'),
    dict(type='NormalizeColor'),    # colour -> [-1, 1] (input; 'color' also kept as an extra)
    dict(type='Collect', keys=('coord', 'grid_coord', 'color'), feat_keys=('color', 'normal')),
]
val_point_pipeline = [
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='first'),  # deterministic
    dict(type='NormalizeColor'),
    dict(type='Collect', keys=('coord', 'grid_coord', 'color'), feat_keys=('color', 'normal')),
]

model = dict(
    type='Gaussian2Scene',
    # Pointcept SpUNet-v1m1 sizes, colour + normal input: the SAME backbone as
    # gaussian2scene_stage1_scannet.py (load_from fills it by its 'backbone.*' keys)
    backbone=dict(type='SpUNet', in_channels=6, base_channels=32,
                  channels=(32, 64, 128, 256, 256, 128, 96, 96),
                  layers=(2, 3, 4, 6, 2, 2, 2, 2)),
    head=dict(
        type='GaussianHead',
        hidden_channels=64,       # [choice] one Linear + LayerNorm + GELU before the output layer
        # UniPre3D: offset activated x offset_scale (1.0 in settings.yaml, added to the point);
        # here tanh x 1.5 voxels = 3 cm: a Gaussian stays at its voxel's surface patch [choice]
        offset_scale=1.5,
        scale_init=0.75,          # [choice] initial std 0.75 voxel: neighbours overlap, no holes
        scale_range=(0.05, 4.0),  # UniPre3D: exp of a clamped value; here 0.05-4 voxels [choice]
        opacity_init=0.8,         # [choice] first renders mostly opaque (sigmoid(logit 0.8))
        color_mode='rgb',         # sigmoid RGB; 'sh_dc' = UniPre3D's SH-DC colour (degree 0)
        color_residual=False,     # [choice] predict the colour, not a correction of the input's
    ),
    render=dict(
        width=None, height=None,  # None: the frames' size (image_size above, 160x120)
        backend='auto',           # gsplat's CUDA kernels on a GPU, geo3d's torch path on CPU
        near_plane=0.05, far_plane=100.0,
        background=(0.0, 0.0, 0.0)),   # [choice] black (UniPre3D: white); every ScanNet pixel
                                       # shows the scene, so the background only fills holes
    # 3DGS's 0.8 L1 + 0.2 (1 - SSIM) (UniPre3D: L2, + 0.01 LPIPS after 10k iterations);
    # depth 0.1 (m, L1) as PonderV2's depth:RGB ratio 1:10 [choice]; geometry 0.1 (centre ->
    # nearest scene point, in voxel sizes) for "the geometric locations of Gaussian
    # primitives" [choice]; the 3DGS-MCMC opacity / scale regularisers off [choice]
    loss_weights=dict(rgb_l1=0.8, rgb_ssim=0.2, depth=0.1, geometry=0.1, opacity_reg=0.0,
                      scale_reg=0.0),
    # 'nearest': exact nearest voxelised point (scipy cKDTree on CPU, chunked cdist on CUDA);
    # 'chamfer' adds points -> nearest centre; 'own_point' = the voxel's own point (cheapest)
    geometry=dict(mode='nearest', target='coord', squared=False, backend='auto', chunk=1024),
    anchor='voxel_center',        # Gaussians start at voxel centres ('point': the kept point)
    color_key='color',
    depth_alpha_threshold=0.5,    # [choice] depth loss only where the render is opaque
    rgb_mask='none',              # photometric loss on every pixel, as 3DGS / UniPre3D
)

train_dataloader = dict(
    batch_size=8,                 # UniPre3D: batch 8
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='scannet_frames_collate'),
    dataset=dict(type='ScanNetFramesDataset', data_root=data_root, split='train',
                 frames_per_sample=frames_per_sample, image_size=image_size,
                 frame_set='train', holdout_every=holdout_every, load_points=True,
                 point_pipeline=train_point_pipeline),
)
# PSNR of the held-out views of the val scenes (never trained on), logged as render/psnr,
# also before the first epoch (ValidateBeforeTrainHook below): the start of the curve
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='scannet_frames_collate'),
    dataset=dict(type='ScanNetFramesDataset', data_root=data_root, split='val',
                 frames_per_sample=val_frames, image_size=image_size, frame_set='holdout',
                 holdout_every=holdout_every, random_frames=False, test_mode=True,
                 load_points=True, point_pipeline=val_point_pipeline),
)
# PSNR / SSIM where the real frame has a depth measurement; 312 val scenes: no per-scene keys
val_evaluator = dict(type='RenderMetric', mask='depth', ssim_window=11, per_scene=False)
val_cfg = dict(type='ValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='TestLoop')

# UniPre3D: Adam (0.9, 0.999), lr 1e-4, batch 8, 20k iterations, step decay x0.8 / 5k.
# Here AdamW + cosine per iteration [choice], 135 epochs of 1201 scenes / 8 = ~20k iterations
max_epochs = 135
warmup_epochs = 2                 # [choice]
lr = 1e-4
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.01),  # wd [choice]
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
custom_hooks = [dict(type='ValidateBeforeTrainHook')]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3,
                                     save_best='render/psnr', rule='greater'))
