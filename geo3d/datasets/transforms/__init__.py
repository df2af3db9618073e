"""Registered transforms (``TRANSFORMS``): point clouds (``point``), multi-frame images,
multi-view images for 2D SSL (``multiview``)."""
from . import image as _image
from . import multiview as _multiview
from . import point as _point
from . import weather  # noqa: F401  (corruptions: fog, rain, snow, night, ...)
from .image import *  # noqa: F401,F403
from .multiview import *  # noqa: F401,F403
from .point import *  # noqa: F401,F403

__all__ = list(_point.__all__) + list(_image.__all__) + list(_multiview.__all__)
