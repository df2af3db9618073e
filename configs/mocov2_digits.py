# MoCo v2 on the embedded digits demo (CPU-sized; see simclr_digits.py): momentum key encoder
# and a queue of 256 keys, InfoNCE at temperature 0.2. The paired baseline of mochi_digits.py
# (same budget, no mixing).
# Sized for 360 steps rather than MoCo's hundreds of epochs: momentum 0.9 instead of 0.99-0.999
# (the key encoder must follow within a few dozen steps) and a projector with BatchNorm
# (MoCo v2's has none): without it the untrained embeddings all point one way (cosine ~0.97),
# the first steps against the random initial queue only pull views together, and the queue
# then holds near-identical keys that repel nothing; with it, learning starts within ~60 steps.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='MoCoV2',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2,
              with_bn=True),
    loss=dict(type='MoCHiLoss', temperature=0.2, num_mix=0, num_query_mix=0),
    queue_size=256,
    momentum=0.9,
    data_preprocessor={{_base_.data_preprocessor}})
# lr 3e-3: at the schedule's 1e-3 the MoCo loss was still falling steeply after 360 steps and
# the probe stayed at the random-init level (MoCHi: 85 / 85 % on val / test vs 91 / 90 %)
optim_wrapper = dict(optimizer=dict(lr=3e-3))
