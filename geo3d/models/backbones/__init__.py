from .spunet import SpUNet

__all__ = ["SpUNet"]
