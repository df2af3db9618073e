# Robust-Depth for `make demo-robust`: configs/robust_depth_kitti_demo.py for 16 epochs (x0.1
# after 12), the schedule of its baseline configs/monodepth_kitti_dyn_16e_demo.py.
_base_ = ['./robust_depth_kitti_demo.py']

max_epochs = 16
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='MultiStepLR', milestones=[12], gamma=0.1, by_epoch=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=1))
