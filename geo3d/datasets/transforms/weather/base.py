"""Plumbing shared by the weather / corruption augmentations: interface, checks, severity,
seeded randomness, smooth noise.

Every corruption is a callable object registered in ``TRANSFORMS``::

    out = corruption(image, depth=None, severity=3, generator=None)

``image``
    (B, 3, H, W) float RGB in [0, 1], on any device (the corruption runs where it is).
``depth``
    (B, 1, H, W) depth in metres of the same image, or None. Corruptions whose physics needs
    it (fog, rain, snow: ``needs_depth = True``) raise without it; others use it when given
    (``uses_depth``, e.g. headlights, depth-dependent zoom blur) and ignore it otherwise.
    Values ``<= 0`` or non-finite (no return: sky, invalid) are taken as ``far_depth``.
``severity``
    int 1..5, as ImageNet-C (Hendrycks & Dietterich, ICLR 2019) and Robust-Depth (Saunders et
    al., ICCV 2023): every effect maps it to its physical parameters through a table of five
    values, so that the effect grows strictly with it.
``generator``
    a ``torch.Generator``; every random draw of the call comes from it, so a seed reproduces
    the output exactly (on one device). Draws are made on the generator's device and moved to
    the image's. None: a fresh generator seeded from torch's global RNG (so
    ``torch.manual_seed`` still makes a run reproducible).

The result is (B, 3, H, W) of the image's dtype, clamped to [0, 1]. Bad arguments raise
``ValueError`` / ``TypeError`` naming the argument and the problem.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'Corruption', 'SEVERITIES', 'check_image', 'check_depth', 'check_severity',
    'severity_value', 'make_generator', 'rand', 'randn', 'smooth_noise', 'pixel_coords',
    'DEFAULT_FAR_DEPTH',
]

#: the severity levels
SEVERITIES = (1, 2, 3, 4, 5)
#: depth (m) given to pixels without a valid depth (sky)
DEFAULT_FAR_DEPTH = 1000.0
_RANGE_TOL = 1e-4


def check_image(image: object, where: str) -> Tensor:
    """``image`` must be a (B, 3, H, W) floating tensor in [0, 1]."""
    if not isinstance(image, Tensor):
        raise TypeError(f'{where}: image must be a (B, 3, H, W) float tensor in [0, 1], got '
                        f'{type(image).__name__}')
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[0] == 0:
        raise ValueError(f'{where}: image must be (B, 3, H, W) with B >= 1, got shape '
                         f'{tuple(image.shape)}')
    if not image.is_floating_point():
        raise TypeError(f'{where}: image must be float in [0, 1], got dtype {image.dtype} '
                        f'(divide uint8 images by 255)')
    lo, hi = torch.aminmax(image.detach())
    if float(lo) < -_RANGE_TOL or float(hi) > 1 + _RANGE_TOL or not torch.isfinite(lo + hi):
        raise ValueError(f'{where}: image values must be in [0, 1], got [{float(lo):.4g}, '
                         f'{float(hi):.4g}]')
    return image


def check_depth(depth: object, image: Tensor, where: str, required: bool,
                far_depth: float = DEFAULT_FAR_DEPTH) -> Tensor | None:
    """``depth`` must be None (unless ``required``) or (B, 1, H, W) matching ``image``.

    Returns the depth as the image's dtype/device with invalid values (``<= 0``, NaN, inf)
    replaced by ``far_depth``, or None.
    """
    if depth is None:
        if required:
            raise ValueError(f'{where}: depth is required (B, 1, H, W) in metres for this '
                             f'effect, got None')
        return None
    if not isinstance(depth, Tensor):
        raise TypeError(f'{where}: depth must be a (B, 1, H, W) tensor in metres, got '
                        f'{type(depth).__name__}')
    b, _, h, w = image.shape
    if depth.ndim != 4 or tuple(depth.shape) != (b, 1, h, w):
        raise ValueError(f'{where}: depth must be (B, 1, H, W) = ({b}, 1, {h}, {w}) like the '
                         f'image, got shape {tuple(depth.shape)}')
    d = depth.detach().to(device=image.device, dtype=image.dtype)
    valid = torch.isfinite(d) & (d > 0)
    return torch.where(valid, d, torch.full_like(d, far_depth))


def check_severity(severity: object, where: str) -> int:
    """``severity`` must be an int in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, int):
        if isinstance(severity, Tensor) and severity.numel() == 1 and \
                not severity.is_floating_point():
            severity = int(severity)
        else:
            raise TypeError(f'{where}: severity must be an int in 1..5, got {severity!r}')
    if severity not in SEVERITIES:
        raise ValueError(f'{where}: severity must be in 1..5, got {severity}')
    return int(severity)


def severity_value(table: Sequence[float], severity: int) -> float:
    """``table[severity - 1]`` (a 5-entry table of an effect's parameter)."""
    return float(table[severity - 1])


def make_generator(generator: torch.Generator | None) -> torch.Generator:
    """``generator`` or a CPU generator seeded from torch's global RNG."""
    if generator is None:
        seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        return torch.Generator().manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f'generator must be a torch.Generator or None, got '
                        f'{type(generator).__name__}')
    return generator


def rand(shape: Sequence[int], generator: torch.Generator, like: Tensor) -> Tensor:
    """Uniform [0, 1) of ``shape`` drawn on the generator's device, returned like ``like``."""
    x = torch.rand(tuple(shape), generator=generator, device=generator.device)
    return x.to(device=like.device, dtype=like.dtype)


def randn(shape: Sequence[int], generator: torch.Generator, like: Tensor) -> Tensor:
    """Standard normal of ``shape`` drawn on the generator's device, returned like ``like``."""
    x = torch.randn(tuple(shape), generator=generator, device=generator.device)
    return x.to(device=like.device, dtype=like.dtype)


def smooth_noise(batch: int, height: int, width: int, generator: torch.Generator,
                 like: Tensor, cell: float = 0.25, octaves: int = 3) -> Tensor:
    """Fractal value noise: (B, 1, H, W), zero mean and unit std per image.

    The sum of ``octaves`` layers of uniform noise on a coarse grid (cell size ``cell`` x H
    pixels, halving per octave, amplitude halving too) upsampled bicubically: smooth blobs
    of about ``cell * H`` pixels, used to modulate fog density (Robust-Depth's fog uses
    simplex noise for the same purpose).
    """
    out = like.new_zeros(batch, 1, height, width)
    amp = 1.0
    for o in range(octaves):
        step = max(1.0, cell * height / 2 ** o)
        gh, gw = int(height / step) + 2, int(width / step) + 2
        grid = rand((batch, 1, gh, gw), generator, like)
        out = out + amp * F.interpolate(grid, (height, width), mode='bicubic',
                                        align_corners=False)
        amp *= 0.5
    out = out - out.mean((2, 3), keepdim=True)
    return out / out.std((2, 3), keepdim=True).clamp_min(1e-6)


def pixel_coords(height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """(H, W) row and column coordinates normalised to [0, 1] (pixel centres)."""
    v = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) / height
    u = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) / width
    return v[:, None].expand(height, width), u[None, :].expand(height, width)


class Corruption:
    """Base of the corruptions: argument checks around :meth:`apply`.

    Subclasses set ``needs_depth`` / ``uses_depth`` and implement
    ``apply(image, depth, severity, generator)`` on checked arguments; ``name`` is the short
    name used on command lines (``fog``, ``rain``, ...).
    """

    name: str = ''
    needs_depth: bool = False
    uses_depth: bool = False
    far_depth: float = DEFAULT_FAR_DEPTH

    def __call__(self, image: Tensor, depth: Tensor | None = None, severity: int = 3,
                 generator: torch.Generator | None = None) -> Tensor:
        where = type(self).__name__
        image = check_image(image, where)
        severity = check_severity(severity, where)
        depth = check_depth(depth, image, where, self.needs_depth, self.far_depth)
        if not (self.needs_depth or self.uses_depth):
            depth = None
        out = self.apply(image, depth, severity, make_generator(generator))
        return out.clamp(0.0, 1.0).to(image.dtype)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({args})'
