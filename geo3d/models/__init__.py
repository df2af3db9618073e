"""Models; importing this package registers every model in geo3d's MODELS registry."""
from . import backbones, data_preprocessors, heads, segmentors  # noqa: F401
from . import probes  # noqa: F401
from . import pretrain3d  # noqa: F401
from . import ssl2d  # noqa: F401
from . import depth  # noqa: F401
