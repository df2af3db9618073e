from .image import MultiFrameDataPreprocessor
from .point import PointDataPreprocessor

__all__ = ['PointDataPreprocessor', 'MultiFrameDataPreprocessor']
