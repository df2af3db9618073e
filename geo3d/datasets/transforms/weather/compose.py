"""Combinations of corruptions and the short names used on command lines and in configs.

* :class:`ComposeCorruptions` applies several effects in turn at one severity
  (Robust-Depth's ``rain+fog+night`` etc.: the order of the name is the order of rendering);
* :class:`RandomCorruption` picks one effect (and a severity) per image, as Robust-Depth's
  loader picks one augmentation folder per training sample (Saunders et al., ICCV 2023);
* :func:`build_corruption` turns ``'fog'``, ``'rain+fog+night'``, a registry name or a config
  dict into a corruption; :func:`parse_corruption_spec` reads ``'fog:3'``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import (Corruption, check_depth, check_image, check_severity, make_generator, rand,
                   SEVERITIES)

__all__ = ['ComposeCorruptions', 'RandomCorruption', 'CORRUPTION_ALIASES', 'build_corruption',
           'parse_corruption_spec', 'CorruptionLike']

#: short names -> configs (``'+'`` combines them, e.g. ``'rain+fog+night'``)
CORRUPTION_ALIASES: dict[str, dict] = {
    'fog': dict(type='FogCorruption'),
    'rain': dict(type='RainCorruption'),
    'snow': dict(type='SnowCorruption'),
    'night': dict(type='NightCorruption'),
    'dusk': dict(type='DuskCorruption'),
    'motion_blur': dict(type='MotionBlurCorruption', mode='zoom'),
    'zoom_blur': dict(type='MotionBlurCorruption', mode='zoom'),
    'linear_blur': dict(type='MotionBlurCorruption', mode='linear'),
    'greyscale': dict(type='GreyscaleCorruption'),
    'grayscale': dict(type='GreyscaleCorruption'),
    'channel_drop': dict(type='ChannelDropCorruption', mode='drop'),
    'red_only': dict(type='ChannelDropCorruption', channel='r', mode='keep'),
    'green_only': dict(type='ChannelDropCorruption', channel='g', mode='keep'),
    'blue_only': dict(type='ChannelDropCorruption', channel='b', mode='keep'),
    'gaussian_noise': dict(type='GaussianNoiseCorruption'),
}

CorruptionLike = str | dict | Corruption


def build_corruption(spec: CorruptionLike) -> Corruption:
    """A corruption from a short name (``'fog'``, ``'rain+fog+night'``), a registry name
    (``'FogCorruption'``), a config dict (``dict(type='FogCorruption', ...)``) or an instance.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if isinstance(spec, Corruption):
        return spec
    if isinstance(spec, dict):
        if 'type' not in spec:
            raise ValueError(f'a corruption config needs a "type", got {spec}')
        t = spec['type']
        if isinstance(t, str) and t in CORRUPTION_ALIASES:
            spec = dict(CORRUPTION_ALIASES[t], **{k: v for k, v in spec.items() if k != 'type'})
        out = TRANSFORMS.build(spec)
        if not isinstance(out, Corruption):
            raise ValueError(f'{spec["type"]!r} is not a corruption (got {type(out).__name__})')
        return out
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f'a corruption must be a name, a config dict or a Corruption, got '
                         f'{spec!r}')
    parts = [p.strip() for p in spec.split('+')]
    if len(parts) > 1:
        return ComposeCorruptions(parts, name=spec.strip())
    name = parts[0]
    if name in CORRUPTION_ALIASES:
        return build_corruption(dict(CORRUPTION_ALIASES[name]))
    cls = TRANSFORMS.get(name)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, Corruption)):
        raise ValueError(f'unknown corruption {name!r}; known: '
                         f'{", ".join(sorted(CORRUPTION_ALIASES))} (combine with +), or a '
                         f'registered *Corruption type')
    return cls()


def parse_corruption_spec(text: str, default_severity: int = 3) -> tuple[str, Corruption, int]:
    """``'fog:3'`` / ``'rain+fog+night:5'`` / ``'snow'`` -> (name, corruption, severity)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'a corruption spec is NAME[:SEVERITY], got {text!r}')
    name, _, sev = text.strip().partition(':')
    if sev:
        try:
            severity = int(sev)
        except ValueError:
            raise ValueError(f'corruption spec {text!r}: severity {sev!r} is not an integer '
                             f'1..5') from None
    else:
        severity = default_severity
    check_severity(severity, f'corruption spec {text!r}')
    return name, build_corruption(name), severity


@TRANSFORMS.register_module()
class ComposeCorruptions(Corruption):
    """Several corruptions applied in order at the same severity (one generator).

    Args:
        corruptions: names / configs / instances (see :func:`build_corruption`).
        name: a short name (default the members' names joined by ``+``).
    """

    def __init__(self, corruptions: Sequence[CorruptionLike], name: str | None = None) -> None:
        if isinstance(corruptions, (str, dict)) or not corruptions:
            raise ValueError(f'ComposeCorruptions: corruptions must be a non-empty list, got '
                             f'{corruptions!r}')
        self.corruptions = [build_corruption(c) for c in corruptions]
        self.name = name or '+'.join(c.name or type(c).__name__ for c in self.corruptions)
        self.needs_depth = any(c.needs_depth for c in self.corruptions)
        self.uses_depth = any(c.uses_depth for c in self.corruptions)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        out = image
        for c in self.corruptions:
            d = depth if (c.needs_depth or c.uses_depth) else None
            out = c.apply(out, d, severity, generator).clamp(0.0, 1.0)
        return out


@TRANSFORMS.register_module()
class RandomCorruption(Corruption):
    """One corruption and one severity drawn per image (Robust-Depth's loader).

    Args:
        corruptions: names / configs / instances (see :func:`build_corruption`).
        severities: the severities drawn from (uniformly).
        clean_prob: probability that an image is left clean.

    ``__call__(image, depth=None, severity=None, generator=None)``: ``severity`` None draws
    one per image; an int fixes it. :meth:`sample` and :meth:`apply_choices` split the draw
    from the rendering, so the frames of one training sample get the same effect.
    """

    name = 'random'

    def __init__(self, corruptions: Sequence[CorruptionLike],
                 severities: Sequence[int] = SEVERITIES, clean_prob: float = 0.0) -> None:
        if isinstance(corruptions, (str, dict)) or not corruptions:
            raise ValueError(f'RandomCorruption: corruptions must be a non-empty list, got '
                             f'{corruptions!r}')
        if not severities:
            raise ValueError('RandomCorruption: severities must not be empty')
        self.severities = tuple(check_severity(s, 'RandomCorruption: severities')
                                for s in severities)
        if not 0 <= clean_prob < 1:
            raise ValueError(f'RandomCorruption: clean_prob must be in [0, 1), got '
                             f'{clean_prob}')
        self.corruptions = [build_corruption(c) for c in corruptions]
        self.clean_prob = float(clean_prob)
        self.needs_depth = any(c.needs_depth for c in self.corruptions)
        self.uses_depth = any(c.uses_depth for c in self.corruptions)

    def sample(self, batch: int, generator: torch.Generator,
               severity: int | None = None) -> tuple[Tensor, Tensor]:
        """(choice, severity), both (B,) long on the CPU; choice -1 = clean."""
        like = torch.empty(0)
        u = rand((batch,), generator, like)
        choice = (rand((batch,), generator, like) * len(self.corruptions)).long()
        choice = choice.clamp(max=len(self.corruptions) - 1)
        choice = torch.where(u < self.clean_prob, torch.full_like(choice, -1), choice)
        if severity is None:
            pick = (rand((batch,), generator, like) * len(self.severities)).long()
            sev = torch.tensor(self.severities)[pick.clamp(max=len(self.severities) - 1)]
        else:
            sev = torch.full((batch,), check_severity(severity, 'RandomCorruption'))
        return choice, sev

    def apply_choices(self, image: Tensor, depth: Tensor | None, choice: Tensor,
                      severity: Tensor, generator: torch.Generator) -> Tensor:
        """Render image ``i`` with ``corruptions[choice[i]]`` at ``severity[i]``.

        ``image`` (N, 3, H, W), ``depth`` (N, 1, H, W) or None, ``choice`` / ``severity`` (N,);
        images that share (choice, severity) are rendered in one batch.
        """
        out = image.clone()
        pairs = sorted({(int(c), int(s)) for c, s in zip(choice.tolist(), severity.tolist())})
        for c, s in pairs:
            if c < 0:
                continue
            idx = ((choice == c) & (severity == s)).nonzero()[:, 0].to(image.device)
            corr = self.corruptions[c]
            d = depth[idx] if depth is not None and (corr.needs_depth or corr.uses_depth) \
                else None
            out[idx] = corr.apply(image[idx], d, s, generator).clamp(0.0, 1.0).to(out.dtype)
        return out

    def __call__(self, image: Tensor, depth: Tensor | None = None, severity: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        image = check_image(image, 'RandomCorruption')
        depth = check_depth(depth, image, 'RandomCorruption', self.needs_depth, self.far_depth)
        g = make_generator(generator)
        choice, sev = self.sample(image.shape[0], g, severity)
        return self.apply_choices(image, depth, choice, sev, g)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        choice, sev = self.sample(image.shape[0], generator, severity)
        return self.apply_choices(image, depth, choice, sev, generator)
