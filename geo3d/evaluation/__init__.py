from .depth import DepthMetric, compute_depth_errors
from .seg import SemSegMetric, confusion_matrix, format_iou_table, iou_from_confusion

__all__ = ['SemSegMetric', 'confusion_matrix', 'iou_from_confusion', 'format_iou_table',
           'DepthMetric', 'compute_depth_errors']
from .corrupted import (CorruptionCase, DemoDepth, PredictedDepth,  # noqa: E402,F401
                        evaluate_corruptions, parse_cases)  # (corrupted test split)
from .render import RenderMetric, masked_ssim, psnr  # noqa: E402,F401  (rendered views)
