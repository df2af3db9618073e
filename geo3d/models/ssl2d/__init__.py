"""2D self-supervised learning: the loss catalog (``losses/``), necks, algorithms
(``algorithms/``) and distributed helpers."""
from . import distributed, losses  # noqa: F401
from . import algorithms, necks  # noqa: F401
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses_all

__all__ = ['distributed', 'losses', 'algorithms', 'necks', *_losses_all]
