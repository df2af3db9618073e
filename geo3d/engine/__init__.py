"""Runner extensions (hooks, schedulers, samplers); importing registers them."""
from geo3d.utils import checkpoint as _checkpoint  # noqa: F401  (torch>=2.6 checkpoint loader)
from . import hooks  # noqa: F401
from . import samplers, schedulers  # noqa: F401
