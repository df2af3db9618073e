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

# Stage 2 (:class:`Gaussian2Scene`): per-point Gaussians rendered into the scene's frames.
from .gaussian_head import GaussianHead, Gaussians  # noqa: E402
from .render_losses import (chamfer_distance, depth_l1_loss, nearest_neighbors,  # noqa: E402
                            point_to_set_distance, rgb_l1_loss, rgb_ssim_loss)
from .stage2 import (Gaussian2Scene, align_depth_to_color, render_intrinsics,  # noqa: E402
                     voxel_anchors)

__all__ += ['Gaussian2Scene', 'GaussianHead', 'Gaussians', 'chamfer_distance', 'depth_l1_loss',
            'nearest_neighbors', 'point_to_set_distance', 'rgb_l1_loss', 'rgb_ssim_loss',
            'align_depth_to_color', 'render_intrinsics', 'voxel_anchors']
