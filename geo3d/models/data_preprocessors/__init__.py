from .point import PointDataPreprocessor

__all__ = ['PointDataPreprocessor']
