# The embedded 2D demo: scikit-learn's handwritten digits (no download), upsampled from 8x8 to
# 16x16, 1197 training images (geo3d.datasets.DigitsDataset; 300 val + 300 test held out).
# Two SimCLR-style views per image; views stay uint8 until the data preprocessor normalises them.
image_size = 16
num_views = 2
# SimCLR's small-image recipe (random resized crop + colour jitter + blur) sized for digits:
# no flips (mirrored digits change meaning); the grey digits make saturation/hue jitter and
# random grayscale no-ops, so brightness/contrast carry the colour augmentation.
view_pipeline = [
    dict(type='RandomResizedCrop', size=image_size, scale=(0.3, 1.0), ratio=(0.75, 1.33),
         antialias=True),
    dict(type='RandomApply', p=0.8,
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4)]),
    dict(type='RandomApply', p=0.5,
         transforms=[dict(type='GaussianBlur', kernel_size=3, sigma=(0.1, 1.0))]),
]
train_pipeline = [
    dict(type='MultiViewImages', pipelines=[view_pipeline], num_views=num_views),
    dict(type='PackImageViews', meta_keys=('gt_label', 'sample_idx')),
]
num_train_images = 1197  # DigitsDataset('train') with the default 30 val + 30 test per class
# CPU-sized backbone: ResNet-18's layout at a quarter of its width (16-32-64-128 channels,
# 0.7 M parameters, 128-D features) from timm; zero_init_last=False keeps the random-init
# baseline a normal ResNet initialisation (timm's default zeroes every block's last BN).
# configs/linear_probe_digits.py probes the same backbone.
digits_backbone = dict(type='TimmBackbone', model_name='resnet18', channels=(16, 32, 64, 128),
                       stem_width=16, zero_init_last=False)
data_preprocessor = dict(type='ImageViewsDataPreprocessor', mean=(0.5, 0.5, 0.5),
                         std=(0.5, 0.5, 0.5))
train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='train', image_size=image_size,
                 pipeline=train_pipeline))
