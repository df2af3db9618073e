"""Self-supervised 3D pretraining: Masked Scene Modeling (MSM) and its parts."""
from .losses import feature_loss, normalize_target
from .masked_unet import MaskedLevel, MaskTokens, masked_unet_forward, transposed_conv_k2s2
from .masking import PatchMask, match_keys, match_voxels, random_patch_mask
from .msm import MSM
from . import gaussian2scene  # noqa: F401  (registers Gaussian2Scene's models)

__all__ = ['MSM', 'feature_loss', 'normalize_target', 'MaskedLevel', 'MaskTokens',
           'masked_unet_forward', 'transposed_conv_k2s2', 'PatchMask', 'match_keys',
           'match_voxels', 'random_patch_mask']
