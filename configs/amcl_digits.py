# AMCL (3 projection heads, a learned temperature per pair) on the embedded digits demo
# (CPU-sized; see simclr_digits.py).
# Known problem (in AMCLLoss as specified, not this config): for an anchor whose hardest
# negative has similarity s < beta, the terms s / tau_neg - beta * Omega(tau_neg) fall without
# bound as tau_neg -> 0, so the temperature network drives tau_neg to tau_min; here the loss went
# to about -4e4 within 15 epochs and the probe ended below a random backbone (62 / 63 %).
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='AMCL',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='MultiHeadProjection', num_heads=3, hidden_channels=512, out_channels=128),
    loss=dict(type='AMCLLoss', dim=128, num_heads=3, beta=0.1, tau_min=1e-5, tau_max=2.0,
              gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
