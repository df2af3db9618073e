# ProDepth (configs/prodepth_kitti.py) sized for a 2-core CPU on the procedural demo drives
# WITH moving objects (data/kitti_dyn), trained exactly as configs/manydepth_kitti_demo.py:
# the same frozen MonoDepth demo teacher (`teacher_checkpoint`), the same data, schedule and
# bin range from the teacher, so ProDepth vs ManyDepth on dynamic pixels compares the methods.
#   python tools/train.py configs/prodepth_kitti_demo.py \
#     --cfg-options model.teacher_checkpoint=work_dirs/dyn_mono/epoch_8.pth
#   python tools/test.py configs/prodepth_kitti_demo.py work_dirs/prodepth_kitti_demo/epoch_8.pth
#
# What differs from configs/prodepth_kitti.py, and why:
# * ResNet-18 everywhere: the demo teacher is the ResNet-18 MonoDepth demo model, and the
#   multi-frame / auxiliary encoders use the same backbone (ProDepth's structure is
#   backbone-agnostic: the split is after layer1, as ManyDepth); 4 scales; the multi-frame and
#   auxiliary networks start as the teacher (init_from_teacher, as the ManyDepth demo) instead
#   of ImageNet Lite-Mono-8M;
# * 128 log bins whose range comes from the teacher (bin_warm_start + EMA) instead of the
#   fixed [0.12, 6.92] of ProDepth's own teacher;
# * the uncertainty head (mono_uncert) starts from random weights (the MonoDepth checkpoint
#   has none) and is trained during the run by the Laplacian NLL of the teacher's photometric
#   error (uncertainty_loss); its sigma widens PCVM's single-frame Gaussian where the teacher
#   reprojects badly;
# * 224x64, batch 4, 8 epochs, Adam 3e-4, loss frames (0, -1, 1, 's'), matching frame -1 only;
# * test: frames (0, -1), the first frame of the test drive in single-frame mode; metrics on
#   all pixels and on the moving objects (DepthMetric regions=('dynamic',)).
_base_ = ['./prodepth_kitti.py']

data_root = 'data/kitti_dyn'
height, width = 64, 224
frame_ids = (0, -1, 1, 's')
demo_scales = (0, 1, 2, 3)
resnet18 = dict(type='DepthResNetEncoder', num_layers=18, pretrained=False)

model = dict(
    teacher=dict(_delete_=True, type='MonoDepth', encoder=resnet18,
                 depth_decoder=dict(type='DepthDecoder'), pose_encoder=resnet18,
                 pose_decoder=dict(type='PoseDecoder'), scales=demo_scales),
    teacher_checkpoint='work_dirs/dyn_mono/epoch_8.pth',
    encoder=dict(encoder=dict(_delete_=True, **resnet18),
                 cost_volume=dict(adaptive_range=True, min_depth_bin=0.1, max_depth_bin=10.0)),
    aux_depth=dict(encoder=dict(_delete_=True, **resnet18)),
    frame_ids=frame_ids, scales=demo_scales,
    bin_update='always', bin_warm_start=True,
    # the multi-frame and auxiliary nets start as the teacher (see manydepth_kitti_demo.py):
    # from random weights no pixel reached W > 0.4 in a whole epoch (static_fraction 0), so the
    # multi-frame net got no reprojection loss; from the teacher W starts at 1 and the static
    # fraction settled around 0.5-0.97 within 20 iterations
    init_from_teacher=True)

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
