# Gaussian2Scene stage 1 (Liu, Yang, Fei, He, arXiv 2506.08777): dual-branch masked autoencoder
# over a ScanNet scene's posed RGB-D frames and its points, with cross-modal alignment, to
# pre-train the SpUNet. The paper publishes no code: its description ("dual-branch MAE", ~60 %
# masking, 2D/3D interaction) plus PiMAE (Chen et al. CVPR 2023, BLVLab/PiMAE,
# Pretrain/cfgs/pretrain_JD_pc2img.yaml) and MAE (He et al. CVPR 2022) are the specification.
# Every line marked [choice] is where none of them fixes the value. docs/gaussian2scene.md.
#
# Data: `python data_converters/scannet.py --root RAW --out data/scannet --frames-every 20`
# (posed RGB-D frames next to the points, same raw scan frame). The SpUNet's weights are the
# checkpoint keys 'backbone.*' (stage 2's load_from, tools/linear_probe.py --checkpoint).
_base_ = ['./_base_/default_runtime.py']

data_root = 'data/scannet'
grid_size = 0.02               # Pointcept / MSM ScanNet voxels
image_size = (128, 160)        # (H, W): 160x128 frames (UniPre3D renders 160x120 for ScanNet)
patch_size = 16                # MAE / PiMAE patch: 8 x 10 = 80 patches per frame
frames_per_sample = 4          # [choice] frames per scene and step (PonderV2 uses 5)
depth_input = 'inverse'        # [choice] RGB + normalised inverse depth; 'depth' or 'none' (RGB)

# The points must stay in the frames' world frame (raw scan coordinates): no rotation, scaling,
# flipping, jitter or centre shift here -- they would break the voxel <-> pixel projection.
# Colour augmentations are allowed (they also change the colour targets, as in MSC).
point_pipeline = [
    dict(type='ChromaticAutoContrast', p=0.2),
    dict(type='ChromaticTranslation', p=0.95, ratio=0.05),
    dict(type='ChromaticJitter', p=0.95, std=0.05),
    # one random point per 2 cm voxel: its coordinate is a real surface point (projection)
    dict(type='GridSample', grid_size=grid_size, mode='train', sample='random'),
    # [choice] at most 200k voxels per scene (memory); keeps coordinates, so the frames still
    # align -- frames then see some cropped-away surface, whose pixels simply get no voxel
    dict(type='SphereCrop', point_max=200000, mode='random'),
    dict(type='NormalizeColor'),    # colour -> [-1, 1] (input and reconstruction target)
    # 'color' / 'normal' kept as extras: the point branch's reconstruction targets
    dict(type='Collect', keys=('coord', 'grid_coord', 'color', 'normal'),
         feat_keys=('color', 'normal')),
]

model = dict(
    type='Gaussian2SceneMAE',
    # Pointcept SpUNet-v1m1 sizes (geo3d's SpUNet default), colour + normal input
    backbone=dict(type='SpUNet', in_channels=6, base_channels=32,
                  channels=(32, 64, 128, 256, 256, 128, 96, 96),
                  layers=(2, 3, 4, 6, 2, 2, 2, 2)),
    # PiMAE's image encoder: 256-d, depth 3, 4 heads (3DETR-sized); MAE's fixed sin-cos
    # position embedding, no class token [choice]
    image_encoder=dict(type='MAEViTEncoder', img_size=image_size, patch_size=patch_size,
                       in_chans=3 if depth_input == 'none' else 4, embed_dim=256, depth=3,
                       num_heads=4, pos_embed='sincos'),
    image_mae=dict(
        mask_ratio=0.6,           # PiMAE / Gaussian2Scene ~60 %; MAE's 0.75 is the option
        decoder_dim=192, decoder_depth=2, decoder_heads=4,   # PiMAE's image decoder
        depth_input=depth_input,
        reconstruct_depth=True,   # [choice] masked patches predict RGB and depth
        norm_pix=True,            # MAE's per-patch normalised pixel targets
        depth_min=0.1, depth_max=10.0),   # [choice] inverse depth 0.1 m / d (ScanNet < 10 m)
    image_depth_weight=1.0,       # [choice] depth term (valid pixels only) next to RGB
    point_mask=dict(
        mask_ratio=0.6,           # PiMAE's point mask ratio (Point-MAE patches)
        # [choice] 8-voxel (16 cm) cubes as patches: about Point-MAE's 32-point groups on
        # ScanNet surfaces; MSC masks 10 cm cells, MSM the bottleneck voxels
        patch_stride=8,
        # [choice] MSC-style input masking: masked voxels keep their position, their input
        # features become a learned token; 'msm' = MSM's encoder-on-visible-voxels pass
        mode='input_token'),
    # Point-MAE's Chamfer does not apply (the U-Net keeps voxel positions): reconstruct the
    # masked voxels' colour [choice]; ('color', 'normal') adds the normals
    point_targets=('color',),
    align=dict(
        dim=128, hidden=256,      # [choice] shared embedding width / projector MLP width
        loss='info_nce',          # multi-positive InfoNCE over the batch's pairs; or 'cosine'
        temperature=0.07,
        sampling='nearest',       # the token of the patch holding the pixel
        depth_tol=0.05,           # [choice] |z - depth| < 5 cm = visible (sensor noise ~1-3 cm)
        min_depth=0.05,
        max_pairs=4096),          # [choice] random subset of correspondences per batch
    # [choice] pixel features = the MAE pass's VISIBLE tokens (no extra encoder pass;
    # correspondences in masked patches are dropped); 'full' encodes all patches once more
    align_pixels='visible',
    loss_weights=dict(image=1.0, point=1.0, align=0.5),   # [choice]
)

train_dataloader = dict(
    batch_size=8,                 # [choice] scenes per step and process
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='scannet_frames_collate'),
    dataset=dict(type='ScanNetFramesDataset', data_root=data_root, split='train',
                 frames_per_sample=frames_per_sample, image_size=image_size,
                 frame_set='all', load_points=True, point_pipeline=point_pipeline),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# PiMAE: AdamW lr 1e-3, weight decay 0.05, cosine, 400 epochs with 15 warm-up epochs
max_epochs = 400
warmup_epochs = 15
lr = 1e-3
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.95), weight_decay=0.05),  # MAE's betas
    # MAE: no weight decay on norms, biases, tokens and position embeddings
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'mask_token': dict(decay_mult=0.0),
                                    'pos_embed': dict(decay_mult=0.0),
                                    'tokens': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3))
