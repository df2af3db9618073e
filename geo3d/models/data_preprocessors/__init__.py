from .image import MultiFrameDataPreprocessor
from .image_views import ImageViewsDataPreprocessor
from .point import PointDataPreprocessor

__all__ = ['PointDataPreprocessor', 'MultiFrameDataPreprocessor', 'ImageViewsDataPreprocessor']
