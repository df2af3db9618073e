"""Frozen-feature probes (MSM's protocol): multi-resolution sampling, linear and kNN probes."""
from .knn_probe import KNNProbe, knn_classify, knn_topk, subsample_rows
from .linear_probe import FrozenFeatureExtractor, LinearProbeSegmentor, predictions_on_points
from .sampler import MultiResolutionSampler, SparseVoxelLookup, trilinear_corners
from .weights import DEFAULT_PREFIXES, extract_backbone_state, load_backbone_weights

__all__ = ['KNNProbe', 'knn_classify', 'knn_topk', 'subsample_rows',
           'MultiResolutionSampler', 'SparseVoxelLookup', 'trilinear_corners',
           'FrozenFeatureExtractor', 'LinearProbeSegmentor', 'predictions_on_points',
           'DEFAULT_PREFIXES', 'extract_backbone_state', 'load_backbone_weights']
