"""Self-supervised depth: photometric losses (SSIM, min-reprojection, auto-masking, smoothness)."""
from .losses import MonocularDepthLoss
from .photometric import Reprojection, min_reprojection, photometric_error
from .smoothness import edge_aware_smoothness
from .ssim import ssim_distance

__all__ = ['MonocularDepthLoss', 'Reprojection', 'min_reprojection', 'photometric_error',
           'edge_aware_smoothness', 'ssim_distance']
from .decoders import DepthDecoder, PoseDecoder  # noqa: E402,F401  (depth networks)
from .monodepth import MonoDepth  # noqa: E402,F401  (Monodepth2 model)
from .cost_volume import (CostVolumeOutput, PlaneSweepCostVolume,  # noqa: E402,F401
                          depth_bins)  # (multi-frame matching)
from .pcvm import (ProbabilisticCostVolumeModulation, distribution_to_cost,  # noqa: E402,F401
                   fuse_distributions, multi_frame_distribution, single_frame_distribution,
                   static_probability)  # (ProDepth's PCVM)
from .robust_depth import RobustDepth  # noqa: E402,F401  (Robust-Depth, weather robustness)
from .multiframe_loss import MultiFrameDepthLoss, masked_mean  # noqa: E402,F401
from .manydepth import ManyDepth, motion_mask  # noqa: E402,F401  (multi-frame models)
from .uncertainty import PhotometricUncertaintyLoss, uncertainty_nll  # noqa: E402,F401
from .cost_volume_depth import CostVolumeDepthNet  # noqa: E402,F401  (ProDepth's aux net)
from .prodepth import ProDepth  # noqa: E402,F401
