# Monodepth2 (Godard et al., ICCV 2019) trained monocularly on Cityscapes video snippets, the
# single-frame baseline of ManyDepth's / ProDepth's Cityscapes tables: ResNet-18 depth and pose
# encoders from ImageNet, frames (0, -1, 1) = t, t-2, t+2, 512x192 after the hood crop, depth
# range 0.1-100, 4 scales, smoothness 1e-3, Adam 1e-4, batch 12, 20 epochs, LR x0.1 after
# epoch 15 (ManyDepth's defaults, which its Cityscapes runs keep). Reference result (1525 test
# frames, ManyDepth crop, 80 m cap, median scaled): AbsRel 0.129 (the ManyDepth paper's
# Cityscapes table; ManyDepth 0.114, ProDepth 0.095).
#   python data_converters/cityscapes.py --root CITYSCAPES --out data/cityscapes --workers 8
#   python tools/train.py configs/monodepth_cityscapes.py
#   python tools/test.py configs/monodepth_cityscapes.py work_dirs/monodepth_cityscapes/epoch_20.pth
# ImageNet weights come through torch.hub (network access once, then cached); offline, pass
#   --cfg-options model.encoder.pretrained=PATH model.pose_encoder.pretrained=PATH
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/cityscapes_depth.py']

model = dict(
    type='MonoDepth',
    encoder=dict(type='DepthResNetEncoder', num_layers=18, pretrained=True),
    depth_decoder=dict(type='DepthDecoder'),
    pose_encoder=dict(type='DepthResNetEncoder', num_layers=18, pretrained=True),
    pose_decoder=dict(type='PoseDecoder'),
    loss=dict(type='MonocularDepthLoss', disparity_smoothness=1e-3, ssim_weight=0.85,
              automask=True, avg_reprojection=False),
    frame_ids=(0, -1, 1), scales=(0, 1, 2, 3), min_depth=0.1, max_depth=100.0)

max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[15], gamma=0.1, by_epoch=True)]
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
