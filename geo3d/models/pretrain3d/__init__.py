"""Self-supervised 3D pretraining: Masked Scene Modeling (MSM) and its parts."""
from .losses import feature_loss, normalize_target
from .masking import PatchMask, match_keys, match_voxels, random_patch_mask

__all__ = ['feature_loss', 'normalize_target', 'PatchMask', 'match_keys', 'match_voxels',
           'random_patch_mask']
