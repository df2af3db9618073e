# MoCHi (MoCo v2 + hard negative mixing) on the embedded digits demo (CPU-sized; see
# simclr_digits.py and mocov2_digits.py). MoCHi(N=64, s=64, s'=16) on the 256-key queue: the
# paper's MoCHi(1024, 1024, 128) scaled to the small queue; mixing starts after 5 epochs
# (45 steps), once the queue holds informative keys (the paper also warms up without mixing).
_base_ = ['./mocov2_digits.py']

model = dict(
    type='MoCHi',
    loss=dict(type='MoCHiLoss', temperature=0.2, num_hard=64, num_mix=64, num_query_mix=16),
    mix_start_iter=45)
