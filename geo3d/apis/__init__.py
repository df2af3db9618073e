"""User-facing inference APIs: depth from images and videos."""
from .depth_predictor import DepthPrediction, DepthPredictor, colorize, load_images, round_size
from .depth_video import DepthVideoStats, render_depth_video, side_by_side
from .video import VideoInfo, VideoWriter, read_video, video_info

__all__ = ['DepthPredictor', 'DepthPrediction', 'colorize', 'load_images', 'round_size',
           'render_depth_video', 'DepthVideoStats', 'side_by_side', 'VideoWriter', 'VideoInfo',
           'read_video', 'video_info']
