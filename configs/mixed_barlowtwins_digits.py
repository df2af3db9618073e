# Mixed Barlow Twins on the embedded digits demo (CPU-sized; see simclr_digits.py). A third
# forward pass embeds alpha x_a + (1 - alpha) x_b[perm], alpha ~ U(0, 1) per step.
# In this 360-step budget the mixed-sample regulariser (the CIFAR recipe's scale, meant for
# 2000 epochs) dominates the loss and the probe ends below a random backbone (74 / 74 % on
# val / test at lr 1e-3, 79 / 77 % at 3e-3); it needs a much longer schedule.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='MixedBarlowTwins',
    backbone={{_base_.digits_backbone}},
    # the CIFAR recipe's projector shape: Linear-BN-ReLU + Linear, 512 -> 1024
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=1024, num_layers=2),
    loss=dict(type='MixedBarlowTwinsLoss', lambda_offdiag=0.0078125, mixup_loss_scale=4.0,
              gather_distributed=True),
    mix_alpha=1.0,
    data_preprocessor={{_base_.data_preprocessor}})
