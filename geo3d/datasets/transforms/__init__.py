"""Registered transforms (``TRANSFORMS``): point clouds (``point``), multi-frame images."""
from . import image as _image
from . import point as _point
from .image import *  # noqa: F401,F403
from .point import *  # noqa: F401,F403

__all__ = list(_point.__all__) + list(_image.__all__)
