"""Edge-aware disparity smoothness (Godard et al., CVPR 2017 / Monodepth2, ICCV 2019)."""
from __future__ import annotations

from kornia.losses import inverse_depth_smoothness_loss
from torch import Tensor


def edge_aware_smoothness(disp: Tensor, image: Tensor, normalize: bool = True,
                          eps: float = 1e-7) -> Tensor:
    """``mean|dx d*| e^{-mean_c|dx I|} + mean|dy d*| e^{-mean_c|dy I|}`` (forward differences).

    ``d* = disp / (mean(disp over H, W) + eps)`` per image when ``normalize`` (Monodepth2's
    mean-normalised disparity, which stops the loss from shrinking the disparity scale). The
    weighted sum is kornia's ``inverse_depth_smoothness_loss``, the same formula as Monodepth2's
    ``get_smooth_loss``.

    Args:
        disp: (B, 1, H, W) disparity.
        image: (B, C, H, W) colour image at the same resolution.
        normalize: divide by the per-image mean disparity first.

    Returns:
        scalar.
    """
    if disp.ndim != 4 or disp.shape[1] != 1:
        raise ValueError(f'disp must be (B, 1, H, W), got {tuple(disp.shape)}')
    if image.ndim != 4 or image.shape[0] != disp.shape[0] or image.shape[-2:] != disp.shape[-2:]:
        raise ValueError(f'image must be (B, C, H, W) with the batch and size of disp '
                         f'{tuple(disp.shape)}, got {tuple(image.shape)}')
    if normalize:
        disp = disp / (disp.mean((2, 3), keepdim=True) + eps)
    return inverse_depth_smoothness_loss(disp, image.to(disp.dtype))
