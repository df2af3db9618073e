# ManyDepth (Watson et al., "The Temporal Opportunist", CVPR 2021), KITTI raw 640x192, with the
# reference hyper-parameters (nianticlabs/manydepth, options.py + README "KITTI_MR"):
#   * single-frame teacher = Monodepth2 (ResNet-18 depth + separate ResNet-18 pose net, ImageNet)
#     trained jointly with the multi-frame network and frozen from epoch 15 (FreezeTeacherHook:
#     requires_grad off + grads dropped, BatchNorm in eval; the optimiser then skips it);
#   * multi-frame encoder = ResNet-18 (ImageNet) split after layer1, cost volume at 1/4
#     resolution on the previous frame only (matching_ids (0, -1)), 96 linear depth bins whose
#     range [0.1, 10] follows an EMA (0.99) of the teacher's depth range while it trains;
#   * loss frames (0, -1, 1); multi-frame reprojection loss masked by confidence x trusted
#     (motion mask: cost-volume argmin vs teacher, relative difference >= 1 untrusted) x
#     not-augmented; L1(depth, teacher depth) consistency on the rest (weight 1, every scale);
#   * matching augmentation: 25 % static camera, 25 % zero cost volume;
#   * Adam 1e-4, batch 12, 20 epochs, LR x0.1 after epoch 15; depth range 0.1-100, 4 scales.
# Reference (Eigen split, 2 frames, median scaled): AbsRel 0.098 (teacher alone 0.118).
#   python tools/train.py configs/manydepth_kitti.py
#   python tools/test.py configs/manydepth_kitti.py work_dirs/manydepth_kitti/epoch_20.pth
# Evaluate the teacher of the same checkpoint: --cfg-options model.predict_teacher=True
# ImageNet weights come through torch.hub (network access once, then cached); offline pass
#   --cfg-options model.teacher.encoder.pretrained=PATH model.teacher.pose_encoder.pretrained=PATH
#                 model.encoder.encoder.pretrained=PATH
# (PATH = torchvision's resnet18-f37072fd.pth). With DDP (tools/dist_train.sh) add
#   model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)
# (the frozen teacher stops producing gradients).
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/kitti_depth.py']

frame_ids = (0, -1, 1)
model = dict(
    type='ManyDepth',
    teacher=dict(
        type='MonoDepth',
        encoder=dict(type='DepthResNetEncoder', num_layers=18, pretrained=True),
        depth_decoder=dict(type='DepthDecoder'),
        pose_encoder=dict(type='DepthResNetEncoder', num_layers=18, pretrained=True),
        pose_decoder=dict(type='PoseDecoder'),
        # the teacher's own Monodepth2 loss (min-reprojection + auto-masking + smoothness)
        loss=dict(type='MonocularDepthLoss', disparity_smoothness=1e-3, ssim_weight=0.85,
                  automask=True)),
    encoder=dict(
        type='MatchingEncoder',
        encoder=dict(type='DepthResNetEncoder', num_layers=18, pretrained=True),
        cost_volume=dict(type='PlaneSweepCostVolume', num_bins=96, binning='linear',
                         min_depth_bin=0.1, max_depth_bin=10.0, adaptive_range=True,
                         momentum=0.99, border=2)),
    depth_decoder=dict(type='DepthDecoder'),
    loss=dict(type='MultiFrameDepthLoss', disparity_smoothness=1e-3, ssim_weight=0.85,
              consistency_weight=1.0, consistency_on='depth', consistency_scales='each'),
    frame_ids=frame_ids, matching_ids=(0, -1), scales=(0, 1, 2, 3), min_depth=0.1,
    max_depth=100.0,
    static_camera_prob=0.25, zero_cost_volume_prob=0.25,
    bin_update='until_frozen',  # the bin range stops moving once the teacher is frozen
    motion_masking=True)

# ManyDepth's --freeze_teacher_epoch 15 (KITTI); use iter=N for --freeze_teacher_step
custom_hooks = [dict(type='FreezeTeacherHook', epoch=15)]

train_dataloader = dict(dataset=dict(frame_ids=frame_ids))
# the multi-frame net needs the previous frame at test time; a missing one (first frame of a
# drive) is filled with zeros and predicted in single-frame mode (zero pose), as ManyDepth
test_dataloader = dict(dataset=dict(frame_ids=(0, -1), missing_frame='zeros'))

max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[15], gamma=0.1, by_epoch=True)]
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
