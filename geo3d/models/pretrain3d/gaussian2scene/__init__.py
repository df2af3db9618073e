"""Gaussian2Scene (Liu et al., arXiv 2506.08777) self-supervised 3D pretraining.

Stage 1 (:class:`Gaussian2SceneMAE`): dual-branch RGB-D image + point masked autoencoder with
cross-modal alignment. Both stage models keep the point backbone as ``self.backbone``.
"""
from .cross_modal import (PointPixelAlignment, PointPixelMatches, cosine_alignment,
                          gather_patch_features, multi_positive_info_nce, project_to_frames,
                          unique_pairs)
from .image_mae import (ImageMAE, ImageMAEOutput, MAEDecoder, MAEViTEncoder, encode_depth,
                        normalize_patches, patchify, random_token_mask, unpatchify)
from .point_mae import MaskedVoxelHead, VoxelPatchMasking
from .stage1 import Gaussian2SceneMAE

__all__ = ['Gaussian2SceneMAE', 'ImageMAE', 'ImageMAEOutput', 'MAEViTEncoder', 'MAEDecoder',
           'patchify', 'unpatchify', 'random_token_mask', 'normalize_patches', 'encode_depth',
           'VoxelPatchMasking', 'MaskedVoxelHead', 'PointPixelAlignment', 'PointPixelMatches',
           'project_to_frames', 'gather_patch_features', 'multi_positive_info_nce',
           'cosine_alignment', 'unique_pairs']
