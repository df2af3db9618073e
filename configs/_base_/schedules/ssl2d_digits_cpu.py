# A CPU-sized schedule for the digits demo: AdamW, linear warm-up then cosine decay, no
# validation during pre-training (evaluate with tools/linear_probe.py and
# configs/linear_probe_digits.py), one checkpoint at the end.
_base_ = ['../default_runtime.py']

max_epochs = 40
warmup_epochs = 1
lr = 1e-3
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-5, betas=(0.9, 0.999)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0,
         begin=warmup_epochs, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=3),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs,
                                     max_keep_ckpts=1))
