"""2D self-supervised losses, one per file; importing registers them in ``MODELS``."""
from .amcl import AMCLLoss, PairTemperature, omega
from .barlow_twins import BarlowTwinsLoss, cross_correlation, redundancy_reduction, standardize
from .cacr import CACRLoss
from .dcl import DCLLoss, DCLWLoss, vmf_weights
from .groco import GroCoLoss
from .isogclr import ISogCLRLoss
from .mixed_barlow_twins import MixedBarlowTwinsLoss, mix_views
from .mochi import HardNegatives, MoCHiLoss, mix_hard_negatives
from .nt_xent import NTXentLoss
from .sla import (SLALoss, SLASDLoss, aggregate_joint_logits, joint_labels,
                  rotate_views)

__all__ = [
    'AMCLLoss', 'PairTemperature', 'omega', 'BarlowTwinsLoss', 'cross_correlation',
    'redundancy_reduction', 'standardize', 'CACRLoss', 'DCLLoss', 'DCLWLoss', 'vmf_weights',
    'GroCoLoss', 'ISogCLRLoss', 'MixedBarlowTwinsLoss', 'mix_views', 'HardNegatives', 'MoCHiLoss',
    'mix_hard_negatives', 'NTXentLoss', 'SLALoss', 'SLASDLoss', 'aggregate_joint_logits',
    'joint_labels', 'rotate_views',
]
