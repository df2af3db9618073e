# `make demo-depth`: Monodepth2 (configs/monodepth_kitti.py) sized for a 2-core CPU on the
# procedural demo drives (tools/make_demo_data.py --kind kitti, converted by
# data_converters/kitti.py with its automatic drive split: 2 train drives = 152 samples with
# both cameras, 1 val drive, 1 test drive of 40 frames with velodyne ground truth).
#
# What differs from the KITTI config, and why:
# * 224x64 input, batch 4, 8 epochs (304 iterations, a few minutes on 2 cores);
# * ResNet-18 encoders from random initialisation (offline: no ImageNet download). With a local
#   copy of torchvision's resnet18-f37072fd.pth add
#     --cfg-options model.encoder.pretrained=PATH model.pose_encoder.pretrained=PATH
# * frames (0, -1, 1, 's'): Monodepth2's mono+stereo ("MS") training. The stereo partner, with
#   its known baseline, gives the depth network a geometric signal from the first iteration;
#   monocular-only training from random weights still predicted the low-texture road as far
#   away after 300 iterations (AbsRel 0.48 -> 1.5), while MS reached AbsRel ~0.25.
#   The pose network is trained as in monocular training (frames -1 and 1).
# * Adam 3e-4, x0.1 for the last 2 epochs.
_base_ = ['./monodepth_kitti.py']

data_root = 'data/kitti_demo'
height, width = 64, 224
frame_ids = (0, -1, 1, 's')

model = dict(encoder=dict(pretrained=False), pose_encoder=dict(pretrained=False),
             frame_ids=frame_ids)

train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, ann_file='splits/auto/train_info.json', height=height,
                 width=width, frame_ids=frame_ids, interpolation='bilinear'))
test_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='splits/auto/test_info.json', height=height,
                 width=width, interpolation='bilinear'))

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[6], gamma=0.1, by_epoch=True)]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1))
