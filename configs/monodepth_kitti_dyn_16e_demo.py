# The MonoDepth baseline of `make demo-robust`: configs/monodepth_kitti_demo.py on the demo
# drives with moving cars (data/kitti_dyn) for 16 epochs (x0.1 after 12), the schedule of
# configs/robust_depth_kitti_16e_demo.py. At 8 epochs the two models were too close to tell
# apart on the corrupted test drive (see README, "Robust-Depth").
_base_ = ['./monodepth_kitti_demo.py']

data_root = 'data/kitti_dyn'
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='MultiStepLR', milestones=[12], gamma=0.1, by_epoch=True)]
train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=1))
