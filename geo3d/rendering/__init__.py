"""Differentiable rendering: 3D Gaussian rasterization (gsplat on CUDA, PyTorch everywhere)."""
from .gaussians import BACKENDS, RenderOutput, gsplat_cuda_available, rasterize
from .projection import ProjectedGaussians, project_gaussians
from .torch_rasterizer import TileBins, composite_tiles, intersect_tiles

__all__ = ['rasterize', 'RenderOutput', 'BACKENDS', 'gsplat_cuda_available',
           'project_gaussians', 'ProjectedGaussians', 'intersect_tiles', 'composite_tiles',
           'TileBins']
