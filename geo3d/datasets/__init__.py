"""Datasets, transforms and collate functions (registered in DATASETS/TRANSFORMS/FUNCTIONS)."""
from . import transforms  # noqa: F401
from .cityscapes import CityscapesSequenceDataset
from .collate import point_collate
from .digits import DigitsDataset
from .image_folder import ImageFolderDataset
from .kitti import KITTIRawDataset
from .scannet import ScanNetDataset

__all__ = ['ScanNetDataset', 'KITTIRawDataset', 'DigitsDataset', 'point_collate', 'transforms',
           'ImageFolderDataset', 'CityscapesSequenceDataset']
