# The digits probe (configs/linear_probe_digits.py) of scatsimclr_digits.py's scattering backbone:
#   python tools/linear_probe.py configs/linear_probe_digits_scatnet.py \
#       --checkpoint work_dirs/scatsimclr_digits/epoch_40.pth      # or `none`
_base_ = ['./linear_probe_digits.py']

model = dict(backbone=dict(_delete_=True, type='ScatNetBackbone', image_size=16, J=2, L=4,
                           stem_channels=32, stages=((32, 2), (64, 2)), pool_size=4))
