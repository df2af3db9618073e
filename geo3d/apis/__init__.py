"""User-facing inference APIs: depth from images, image pairs and videos."""
from .depth_predictor import (DepthPrediction, DepthPredictor, colorize, is_multi_frame,
                              load_images, load_intrinsics, round_size)
from .depth_video import DepthVideoStats, StableColorRange, render_depth_video, side_by_side
from .video import VideoInfo, VideoWriter, read_video, video_info

__all__ = ['DepthPredictor', 'DepthPrediction', 'colorize', 'load_images', 'load_intrinsics',
           'is_multi_frame', 'round_size', 'render_depth_video', 'DepthVideoStats',
           'StableColorRange', 'side_by_side', 'VideoWriter', 'VideoInfo', 'read_video',
           'video_info']
