# MoCHi (MoCo v2 + hard negative mixing) on the embedded digits demo (CPU-sized; see
# simclr_digits.py). MoCHi(N=128, s=128, s'=32) on a 512-key queue: the paper's
# MoCHi(1024, 1024, 128) scaled to the small queue; mixing starts after the first epoch.
_base_ = ['./mocov2_digits.py']

model = dict(
    type='MoCHi',
    loss=dict(type='MoCHiLoss', temperature=0.2, num_hard=128, num_mix=128, num_query_mix=32),
    mix_start_iter=9)
