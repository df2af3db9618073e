"""Data samplers; importing registers them in geo3d's DATA_SAMPLERS registry."""
from .cluster_selection import (balanced_allocation, balanced_cluster_sample, hierarchical_kmeans,
                                near_duplicate_mask)
from .curation import CurationSampler

__all__ = ['CurationSampler', 'balanced_allocation', 'balanced_cluster_sample',
           'hierarchical_kmeans', 'near_duplicate_mask']
