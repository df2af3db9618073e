"""2D SSL algorithms (one per file, mmengine ``BaseModel``s registered in ``MODELS``)."""
from .amcl import AMCL
from .barlow_twins import BarlowTwins
from .base import BaseSSL2D, MultiViewSSL, TwoViewSSL
from .cacr import CACR
from .dcl import DCL
from .groco import GroCo
from .isogclr import ISogCLR
from .mixed_barlow_twins import MixedBarlowTwins
from .moco import MoCHi, MoCoV2
from .scatsimclr import ScatSimCLR
from .simclr import SimCLR
from .sla import SLA

__all__ = ['BaseSSL2D', 'TwoViewSSL', 'MultiViewSSL', 'SimCLR', 'BarlowTwins',
           'MixedBarlowTwins', 'MoCoV2', 'MoCHi', 'DCL', 'ISogCLR', 'CACR', 'AMCL', 'SLA', 'GroCo',
           'ScatSimCLR']
