"""Datasets, transforms and collate functions (registered in DATASETS/TRANSFORMS/FUNCTIONS)."""
from . import transforms  # noqa: F401
from .cityscapes import CityscapesSequenceDataset
from .collate import point_collate
from .digits import DigitsDataset
from .image_folder import ImageFolderDataset
from .kitti import KITTIRawDataset
from .nuscenes import NuScenesDepthDataset, NuScenesLidarDataset
from .scannet import ScanNetDataset
from .scannet_frames import ScanNetFramesDataset, scannet_frames_collate

__all__ = ['ScanNetDataset', 'KITTIRawDataset', 'DigitsDataset', 'point_collate', 'transforms',
           'ImageFolderDataset', 'CityscapesSequenceDataset', 'ScanNetFramesDataset',
           'scannet_frames_collate']
__all__ += ['NuScenesDepthDataset', 'NuScenesLidarDataset']
