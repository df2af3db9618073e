# ManyDepth (configs/manydepth_kitti.py) sized for a 2-core CPU on the procedural demo drives
# WITH moving objects (tools/make_demo_data.py --kind kitti ... -> data/kitti_raw_dyn, converted
# by data_converters/kitti.py to data/kitti_dyn with its automatic drive split).
#
# Same recipe as configs/prodepth_kitti_demo.py, so the two differ only in the method:
# * the single-frame teacher (and its pose net) is the MonoDepth demo model trained on the same
#   drives (configs/monodepth_kitti_demo.py with data_root=data/kitti_dyn), loaded from
#   `teacher_checkpoint` and frozen from step 0 (ProDepth's shipped mode):
#     python tools/train.py configs/manydepth_kitti_demo.py \
#       --cfg-options model.teacher_checkpoint=work_dirs/dyn_mono/epoch_8.pth
#     python tools/test.py configs/manydepth_kitti_demo.py work_dirs/manydepth_kitti_demo/epoch_8.pth
#   (add --cfg-options model.predict_teacher=True to evaluate the teacher itself);
# * the cost-volume range comes from that teacher: the first step sets it to the teacher's
#   batch depth range (x0.9 / x1.1), then an EMA (0.99) keeps following it
#   (bin_warm_start, bin_update='always'); a frozen teacher gives a fixed target;
# * 224x64 input, batch 4, 8 epochs (304 iterations), Adam 3e-4, x0.1 for the last 2 epochs
#   (as the MonoDepth demo);
# * the multi-frame ResNet-18 encoder and decoder start as the teacher (init_from_teacher: its
#   weights, reduce_conv passing the features through, zero on the cost volume), ProDepth's
#   auxiliary net too. ManyDepth/ProDepth start from ImageNet instead; from random weights
#   (offline, no ImageNet) ProDepth's auxiliary depth stayed far from the teacher's for a whole
#   epoch (no pixel with W > 0.4, so no multi-frame reprojection loss at all). Random init:
#     --cfg-options model.init_from_teacher=False
# * loss frames (0, -1, 1, 's') as the MonoDepth demo (the stereo partner has a known pose);
#   the cost volume matches only frame -1;
# * test: frames (0, -1), the first frame of the test drive in single-frame mode; metrics on
#   all pixels and on the moving objects (DepthMetric regions=('dynamic',)).
_base_ = ['./manydepth_kitti.py']

data_root = 'data/kitti_dyn'
height, width = 64, 224
frame_ids = (0, -1, 1, 's')

model = dict(
    teacher=dict(encoder=dict(pretrained=False), pose_encoder=dict(pretrained=False)),
    encoder=dict(encoder=dict(pretrained=False)),
    frame_ids=frame_ids,
    teacher_checkpoint='work_dirs/dyn_mono/epoch_8.pth',
    freeze_teacher=True,
    bin_update='always', bin_warm_start=True,
    init_from_teacher=True)
custom_hooks = []  # no FreezeTeacherHook: the teacher is frozen from the start

train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, ann_file='splits/auto/train_info.json', height=height,
                 width=width, frame_ids=frame_ids, interpolation='bilinear'))
test_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='splits/auto/test_info.json', height=height,
                 width=width, interpolation='bilinear', frame_ids=(0, -1),
                 missing_frame='zeros'))
# AbsRel etc. also on the moving objects (abs_rel/dynamic) and the rest (abs_rel/static), from
# the converter's gt_dynamic_masks.npz of the demo drives
test_evaluator = dict(regions=('dynamic',))

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='MultiStepLR', milestones=[6], gamma=0.1, by_epoch=True)]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1))
