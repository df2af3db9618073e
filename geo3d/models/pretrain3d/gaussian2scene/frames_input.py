"""Reading the frame tensors of a ``scannet_frames_collate`` batch, shared by both stages."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor

__all__ = ['frame_tensor']


def frame_tensor(inputs: Mapping[str, Any], key: str, shape: Sequence[int | None],
                 owner: str) -> Tensor:
    """``inputs[key]`` checked against ``shape`` (``None`` = any size); errors name ``owner``.

    Raises:
        KeyError: the batch has no ``key``.
        ValueError: not a tensor of that shape.
    """
    if key not in inputs:
        raise KeyError(f'{owner} needs inputs[{key!r}] (ScanNetFramesDataset with '
                       f'scannet_frames_collate); got keys {sorted(inputs)}')
    t = inputs[key]
    if not isinstance(t, Tensor) or t.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, t.shape)):
        want = '(' + ', '.join('*' if s is None else str(s) for s in shape) + ')'
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f'inputs[{key!r}] must have shape {want}, got {got}')
    return t
