"""Registered point-cloud transforms (``TRANSFORMS``)."""
from .point import *  # noqa: F401,F403
from .point import __all__  # noqa: F401
