# ProDepth (Woo, Lee et al., ECCV 2024) on Cityscapes, 512x192, as the released code trains it
# (train_cs_manydepth.sh): the model of configs/_base_/models/prodepth_lite_mono.py (as
# configs/prodepth_kitti.py) with
#   * data: Cityscapes video snippets (configs/_base_/datasets/cityscapes_depth.py), frames
#     (0, -1, 1) at sample_gap 2, hood cropped, 512x192; test on the 1525 test frames with the
#     previous frame (frame_ids (0, -1)) and ManyDepth's Cityscapes evaluation;
#   * the FIXED bin range [0.13, 5.17] that ProDepth's own Cityscapes teacher tracked (in its
#     units: with another teacher give its range, or take it from the teacher with
#     --cfg-options model.encoder.cost_volume.adaptive_range=True model.bin_update=always
#     model.bin_warm_start=True);
#   * batch 24 (4 GPUs x 6 in the paper; the README says 1 GPU x 24 works), Adam 1e-4,
#     25 epochs, LR x0.1 after epoch 15.
# The authors report that Cityscapes training without a good frozen teacher is poor (ProDepth
# issue #18): first train a single-frame Lite-Mono-8M MonoDepth on Cityscapes (any MonoDepth
# config on cityscapes_depth.py with model.encoder=dict(type='LiteMonoEncoder',
# variant='lite-mono-8m', height=192, width=512) and model.scales=(0,1,2)), then
#   python tools/train.py configs/prodepth_cityscapes.py \
#     --cfg-options model.teacher_checkpoint=work_dirs/monodepth_cs_lite8m/epoch_20.pth
#   python tools/test.py configs/prodepth_cityscapes.py work_dirs/prodepth_cityscapes/epoch_25.pth
# Reference (Cityscapes test, 1525 frames, 2 frames, median scaled): AbsRel 0.095 (README).
# Note: ProDepth's released Cityscapes checkpoint has a cost-volume encoder with Lite-Mono stage
# depths (4, 2, 5) (README, commit efc6840); this config trains the standard 8M one.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/cityscapes_depth.py',
          './_base_/models/prodepth_lite_mono.py']

lite_mono_8m = dict(type='LiteMonoEncoder', variant='lite-mono-8m', height=192, width=512,
                    drop_path_rate=0.4)
model = dict(
    teacher=dict(encoder=lite_mono_8m),
    teacher_checkpoint='work_dirs/monodepth_cs_lite8m/epoch_20.pth',  # stage 1 output
    encoder=dict(encoder=lite_mono_8m,
                 cost_volume=dict(min_depth_bin=0.13, max_depth_bin=5.17)),
    aux_depth=dict(encoder=lite_mono_8m))

train_dataloader = dict(batch_size=24, dataset=dict(frame_ids=(0, -1, 1)))
test_dataloader = dict(dataset=dict(frame_ids=(0, -1), missing_frame='zeros'))

max_epochs = 25
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
