"""Frozen-feature probes (MSM's protocol): multi-resolution sampling, linear and kNN probes;
linear / kNN evaluation of image backbones (``image_probe``)."""
from .cached_linear import CachedLinearProbe, StandardizedLinear
from .image_probe import (ImageLinearProbe, LinearClassifier, build_eval_loader,
                          extract_image_features, fit_linear_probe, run_image_probe,
                          top1_accuracy)
from .knn_probe import KNNProbe, knn_classify, knn_topk, subsample_rows
from .linear_probe import FrozenFeatureExtractor, LinearProbeSegmentor, predictions_on_points
from .scenes import build_extractor, build_probe_split, iter_scenes
from .sampler import MultiResolutionSampler, SparseVoxelLookup, trilinear_corners
from .weights import DEFAULT_PREFIXES, extract_backbone_state, load_backbone_weights

__all__ = ['CachedLinearProbe', 'StandardizedLinear', 'build_extractor', 'build_probe_split',
           'iter_scenes', 'KNNProbe', 'knn_classify', 'knn_topk', 'subsample_rows',
           'MultiResolutionSampler', 'SparseVoxelLookup', 'trilinear_corners',
           'FrozenFeatureExtractor', 'LinearProbeSegmentor', 'predictions_on_points',
           'DEFAULT_PREFIXES', 'extract_backbone_state', 'load_backbone_weights',
           'ImageLinearProbe', 'LinearClassifier', 'build_eval_loader', 'extract_image_features',
           'fit_linear_probe', 'run_image_probe', 'top1_accuracy']
