# ProDepth (Woo, Lee et al., ECCV 2024) as the released code builds it (Sungmin-Woo/ProDepth
# @1519603, Dec-2024 loss fix), shared by configs/prodepth_kitti.py and prodepth_cityscapes.py:
#   * backbone Lite-Mono-8M (drop path 0.4) for the teacher, the multi-frame encoder and the
#     auxiliary cost-volume encoder; 3 decoder scales (0, 1, 2); pose net ResNet-18;
#   * teacher (+ pose net) loaded from a single-frame checkpoint (`teacher_checkpoint`, set by
#     the experiment config) and frozen from step 0 (--freeze_teacher_and_pose): only the
#     multi-frame networks are optimised;
#   * cost volume on the previous frame at 1/4 resolution, 128 log-uniform ("SID") bins over a
#     FIXED range (set per data set by the experiment config);
#   * auxiliary depth from the raw cost volume (weight 0.3, its own photometric loss at scale 0),
#     static probability W = exp(-2/3|D_cv - D_mono|) exp(-2/3|s_cv - s_mono|), PCVM with the
#     teacher's Gaussian (sigma = uncertainty head x 20), loss mask M = W [W > 0.4] (1 - aug),
#     consistency 0.1 x |s - s_mono| on (1 - M) (scaled disparity at scale 0), smoothness 1e-3;
#   * matching augmentation 25 % static camera / 25 % zero cost volume (as ManyDepth).
# The uncertainty head ('mono_uncert') is not trained in ProDepth's released code (it ships in
# the authors' teacher checkpoint). geo3d trains it during this run with the Laplacian NLL of
# the frozen teacher's photometric error (Poggi et al., CVPR 2020), on the teacher's detached
# features: `uncertainty_loss` (None = keep a loaded head frozen).
# ImageNet Lite-Mono-8M weights (github.com/noahzn/Lite-Mono, downloaded by hand) for the
# multi-frame and cost-volume encoders: --cfg-options
#   model.encoder.encoder.pretrained=PATH model.aux_depth.encoder.pretrained=PATH
prodepth_scales = (0, 1, 2)  # Lite-Mono: 3 decoder scales
lite_mono_8m = dict(type='LiteMonoEncoder', variant='lite-mono-8m', height=192, width=640,
                    drop_path_rate=0.4)
model = dict(
    type='ProDepth',
    teacher=dict(
        type='MonoDepth',
        encoder=lite_mono_8m,
        depth_decoder=dict(type='DepthDecoder'),
        pose_encoder=dict(type='DepthResNetEncoder', num_layers=18),
        pose_decoder=dict(type='PoseDecoder'),
        scales=prodepth_scales),
    teacher_checkpoint=None,  # the experiment config names the single-frame checkpoint
    freeze_teacher=True,
    encoder=dict(
        type='MatchingEncoder',
        encoder=lite_mono_8m,
        cost_volume=dict(type='PlaneSweepCostVolume', num_bins=128, binning='log',
                         min_depth_bin=0.12, max_depth_bin=6.92, adaptive_range=False,
                         border=2)),
    depth_decoder=dict(type='DepthDecoder'),
    aux_depth=dict(type='CostVolumeDepthNet', encoder=lite_mono_8m,
                   decoder=dict(type='DepthDecoder', scales=(0,))),
    aux_weight=0.3,
    uncertainty_decoder=dict(type='DepthDecoder', scales=(0,)),
    uncertainty_loss=dict(type='PhotometricUncertaintyLoss', distribution='laplace'),
    pcvm=dict(type='ProbabilisticCostVolumeModulation', var_scale=20.0, gate=0.4,
              mapping='log'),  # 'linear' = ProDepth's min-max mapping (see pcvm.py)
    static_alpha=2.0 / 3.0, static_gate=0.4,
    loss=dict(type='MultiFrameDepthLoss', disparity_smoothness=1e-3, ssim_weight=0.85,
              consistency_weight=0.1, consistency_on='disparity', consistency_scales='first'),
    frame_ids=(0, -1, 1), matching_ids=(0, -1), scales=prodepth_scales, min_depth=0.1,
    max_depth=100.0,
    static_camera_prob=0.25, zero_cost_volume_prob=0.25)

# Adam 1e-4, LR x0.1 after epoch 15 (ProDepth's StepLR 15); epochs and batch per data set
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[15], gamma=0.1, by_epoch=True)]
