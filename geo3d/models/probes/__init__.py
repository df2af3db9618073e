"""Frozen-feature probes (MSM's protocol): multi-resolution sampling, linear and kNN probes."""
from .sampler import MultiResolutionSampler, SparseVoxelLookup, trilinear_corners

__all__ = ['MultiResolutionSampler', 'SparseVoxelLookup', 'trilinear_corners']
