from .spunet import SpUNet
from .depth_resnet import DepthResNetEncoder

__all__ = ["SpUNet", "DepthResNetEncoder"]
