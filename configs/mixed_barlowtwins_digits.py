# Mixed Barlow Twins on the embedded digits demo (CPU-sized; see simclr_digits.py). A third
# forward pass embeds alpha x_a + (1 - alpha) x_b[perm], alpha ~ U(0, 1) per step.
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
