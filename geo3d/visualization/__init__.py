"""Visualization helpers (importing this package registers geo3d's visualizers, if any)."""
from .pca import pca_rgb

__all__ = ['pca_rgb']
