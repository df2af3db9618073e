# Robust-Depth (Saunders, Vogiatzis, Manso, ICCV 2023; github.com/kieran514/robustdepth) on
# KITTI raw, 640x192, with the reference hyper-parameters of its experiments/train_all.sh
# (--teacher --depth_loss --warp_clear --use_augpose_loss): ResNet-18 depth and pose encoders
# from ImageNet, frames [0, -1, 1], depth range 0.1-80, 4 scales, smoothness 1e-3, batch 12,
# Adam 1e-4, 30 epochs, LR x0.1 at epochs 20, 25 and 29, seed 42. Reference (README, R18):
# AbsRel 0.115 clean / 0.133 on its augmented KITTI test sets.
#
# The augmented images are rendered on the fly (geo3d.datasets.transforms.weather) instead of
# Robust-Depth's offline GAN / rain-renderer folders; fog, rain and snow take their depth from
# the clean branch's prediction median-scaled to 15 m. See docs/robust_depth.md.
#   python tools/train.py configs/robust_depth_kitti.py
#   python tools/test.py configs/robust_depth_kitti.py work_dirs/robust_depth_kitti/epoch_30.pth
#   python tools/eval_corruptions.py configs/robust_depth_kitti.py \
#       work_dirs/robust_depth_kitti/epoch_30.pth --corruptions fog:3 rain:3 night:3 ...
_base_ = ['./monodepth_kitti.py']

model = dict(
    type='RobustDepth',
    min_depth=0.1, max_depth=80.0,
    # Robust-Depth's augmentation folders, as on-the-fly effects; one per sample
    corruptions=('rain', 'fog', 'snow', 'night', 'dusk', 'motion_blur', 'linear_blur',
                 'greyscale', 'channel_drop', 'red_only', 'green_only', 'blue_only',
                 'gaussian_noise', 'rain+fog', 'rain+night', 'fog+night', 'rain+fog+night',
                 'dusk+fog', 'dusk+rain', 'dusk+rain+fog'),
    severities=(1, 2, 3, 4, 5), clean_prob=0.0,
    physics_depth='prediction', physics_median_depth=15.0,
    pseudo_depth_weight=0.01, pseudo_pose_weight=0.01)

randomness = dict(seed=42, deterministic=False)
max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[20, 25, 29], gamma=0.1, by_epoch=True)]
