# iSogCLR (a learned temperature per training image) on the embedded digits demo (CPU-sized;
# see simclr_digits.py). The loader's data_samples['sample_idx'] index the per-image state;
# num_samples must be the training set's size.
_base_ = ['./_base_/datasets/digits_ssl.py', './_base_/schedules/ssl2d_digits_cpu.py']

model = dict(
    type='ISogCLR',
    backbone={{_base_.digits_backbone}},
    neck=dict(type='ProjectionMLP', hidden_channels=512, out_channels=128, num_layers=2),
    # the unimodal CIFAR recipe: rho 0.4, gamma 0.8, tau_init 0.1, eta 0.03, tau in [0.05, 1]
    loss=dict(type='ISogCLRLoss', num_samples={{_base_.num_train_images}}, rho=0.4, gamma=0.8,
              tau_init=0.1, eta=0.03, gather_distributed=True),
    data_preprocessor={{_base_.data_preprocessor}})
