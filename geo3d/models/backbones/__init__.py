from .spunet import SpUNet
from .depth_resnet import DepthResNetEncoder
from .lite_mono import LiteMonoEncoder
from .matching_encoder import MatchingEncoder
from .image import SmallViT, TimmBackbone, TorchvisionResNet
from .scattering import ScatNetBackbone

__all__ = ["SpUNet", "DepthResNetEncoder", "TorchvisionResNet", "TimmBackbone", "SmallViT",
           "ScatNetBackbone", "LiteMonoEncoder", "MatchingEncoder"]
