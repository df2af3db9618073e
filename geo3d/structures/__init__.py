from .grid import GridSampleResult, PoolingMap, grid_sample, pooling_map, unique_voxels, voxel_keys
from .point_batch import PointBatch, batch_to_offset, offset_to_batch

__all__ = ['PointBatch', 'GridSampleResult', 'PoolingMap', 'grid_sample', 'pooling_map',
           'unique_voxels', 'voxel_keys', 'batch_to_offset', 'offset_to_batch']
