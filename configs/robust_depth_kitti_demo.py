# Robust-Depth on the procedural demo drives with moving cars (data/kitti_dyn, made by
# tools/make_demo_data.py --kind kitti and data_converters/kitti.py), sized for a 2-core CPU.
#
# Everything but the model is configs/monodepth_kitti_demo.py (224x64, batch 4, frames
# (0, -1, 1, 's'), random-init ResNet-18s, Adam 3e-4 for 8 epochs with x0.1 after 6, depth
# range 0.1-100, seed 0), with the data root set to data/kitti_dyn, so that a MonoDepth run of
#   python tools/train.py configs/monodepth_kitti_demo.py --cfg-options \
#       train_dataloader.dataset.data_root=data/kitti_dyn \
#       test_dataloader.dataset.data_root=data/kitti_dyn
# and this config compare fairly. A step costs about twice MonoDepth's (two passes through the
# networks; the corruptions themselves are cheap at this size).
#   python tools/train.py configs/robust_depth_kitti_demo.py
#   python tools/eval_corruptions.py configs/robust_depth_kitti_demo.py \
#       work_dirs/robust_depth_kitti_demo/epoch_8.pth --depth-source demo --out table.md
_base_ = ['./monodepth_kitti_demo.py']

data_root = 'data/kitti_dyn'

model = dict(
    type='RobustDepth',
    corruptions=('rain', 'fog', 'snow', 'night', 'dusk', 'motion_blur', 'linear_blur',
                 'greyscale', 'channel_drop', 'red_only', 'green_only', 'blue_only',
                 'gaussian_noise', 'rain+fog', 'rain+night', 'fog+night', 'rain+fog+night',
                 'dusk+fog', 'dusk+rain', 'dusk+rain+fog'),
    severities=(1, 2, 3, 4, 5), clean_prob=0.0,
    physics_depth='prediction', physics_median_depth=15.0,
    pseudo_depth_weight=0.01, pseudo_pose_weight=0.01)

train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
