# ProDepth (Woo, Lee et al., ECCV 2024), KITTI raw 640x192, as the released code trains it
# (train_kitti_manydepth.sh + options.py): the model of configs/_base_/models/prodepth_lite_mono.py
# (Lite-Mono-8M, frozen teacher + pose net from a checkpoint, 128 log bins, PCVM, W-weighted
# reprojection, consistency 0.1, auxiliary cost-volume depth x0.3) with
#   * the FIXED bin range [0.12, 6.92]: the range ProDepth's own KITTI teacher tracked. It is
#     in that teacher's (unknown) units: with another teacher give its range, or take it from
#     the teacher:  --cfg-options model.encoder.cost_volume.adaptive_range=True \
#                   model.bin_update=always model.bin_warm_start=True
#   * eigen_zhou, frames (0, -1, 1), 640x192, batch 12 (4 GPUs x 3 in the paper, SyncBN),
#     Adam 1e-4, 20 epochs, LR x0.1 after epoch 15.
# Reference (Eigen split, 2 frames, median scaled): AbsRel 0.086 (ProDepth README).
#
# Stage 1, the single-frame Lite-Mono-8M teacher (Monodepth2 loss; ImageNet Lite-Mono-8M from
# github.com/noahzn/Lite-Mono, downloaded by hand):
#   python tools/train.py configs/monodepth_kitti.py --work-dir work_dirs/monodepth_kitti_lite8m \
#     --cfg-options "model.encoder=dict(type='LiteMonoEncoder',variant='lite-mono-8m',pretrained='LITE_MONO_8M_IMAGENET.pth')" \
#     "model.scales=(0,1,2)"
# Stage 2 (this file):
#   python tools/train.py configs/prodepth_kitti.py \
#     --cfg-options model.teacher_checkpoint=work_dirs/monodepth_kitti_lite8m/epoch_20.pth \
#     model.encoder.encoder.pretrained=LITE_MONO_8M_IMAGENET.pth \
#     model.aux_depth.encoder.pretrained=LITE_MONO_8M_IMAGENET.pth
#   python tools/test.py configs/prodepth_kitti.py work_dirs/prodepth_kitti/epoch_20.pth
# With DDP add model_wrapper_cfg=dict(type='MMDistributedDataParallel',
# find_unused_parameters=True) (the auxiliary encoder's early stages are unused).
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/kitti_depth.py',
          './_base_/models/prodepth_lite_mono.py']

model = dict(
    teacher_checkpoint='work_dirs/monodepth_kitti_lite8m/epoch_20.pth',  # stage 1 output
    encoder=dict(cost_volume=dict(min_depth_bin=0.12, max_depth_bin=6.92)))

train_dataloader = dict(dataset=dict(frame_ids=(0, -1, 1)))
# PCVM needs the previous frame, the teacher, its uncertainty head and the pose net at test
# time; a missing previous frame gives the single-frame fallback (zero pose)
test_dataloader = dict(dataset=dict(frame_ids=(0, -1), missing_frame='zeros'))

max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
