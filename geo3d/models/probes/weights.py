"""Load a backbone's weights out of a training or pre-training checkpoint."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from geo3d.utils.checkpoint import load_checkpoint_file

# Segmentors (``backbone.``), MSM wrappers with a nested backbone (``student.backbone.``),
# geo3d's MSM model whose student *is* the backbone (``student.``), DDP-wrapped variants, the
# EMA teacher last, and linear-probe checkpoints (``extractor.backbone.``).
DEFAULT_PREFIXES: tuple[str, ...] = (
    'backbone.', 'student.backbone.', 'module.student.backbone.', 'module.backbone.',
    'student.', 'module.student.', 'teacher.backbone.', 'teacher.', 'extractor.backbone.')


def _state_dict_of(ckpt: Any, path: str) -> Mapping[str, Tensor]:
    if isinstance(ckpt, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key), Mapping):
                return ckpt[key]
        if all(isinstance(v, Tensor) for v in ckpt.values()):
            return ckpt
    raise ValueError(f'{path}: no state dict found (expected a mmengine checkpoint with '
                     f'"state_dict" or a plain state dict)')


def _listing(keys: Sequence[str], limit: int = 12) -> str:
    keys = sorted(keys)
    more = f', ... ({len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def extract_backbone_state(state: Mapping[str, Tensor], prefixes: Sequence[str],
                           path: str = '<state dict>') -> tuple[dict[str, Tensor], str]:
    """The entries under the first prefix (in ``prefixes`` order) that any key starts with.

    Returns the stripped state dict and the prefix used; a state dict where no prefix matches is
    taken as a bare backbone state dict (prefix ``''``).
    """
    for p in prefixes:
        sub = {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
        if sub:
            return sub, p
    return dict(state), ''


def load_backbone_weights(backbone: nn.Module, checkpoint_path: str,
                          prefixes: Sequence[str] = DEFAULT_PREFIXES,
                          map_location: Any = 'cpu') -> str:
    """Copy a checkpoint's backbone weights into ``backbone`` with a strict key/shape check.

    Args:
        backbone: the module to fill.
        checkpoint_path: a mmengine checkpoint (``state_dict`` inside) of a segmentor
            (``backbone.*``), of MSM pre-training (``student.*`` or ``student.backbone.*``; the
            student, not the EMA teacher, comes first in the default order), or a bare backbone
            state dict.
        prefixes: prefixes tried in order; the first one that some key starts with is stripped.
        map_location: as in ``torch.load``.

    Returns:
        The prefix that was used (``''`` for a bare state dict).

    Raises:
        KeyError: keys are missing or unexpected (the message names the file and lists them).
        ValueError: shapes differ, or the file holds no state dict.
    """
    path = str(checkpoint_path)
    state = _state_dict_of(load_checkpoint_file(path, map_location=map_location), path)
    sub, prefix = extract_backbone_state(state, prefixes, path)
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in sub]
    unexpected = [k for k in sub if k not in expected]
    if missing or unexpected:
        where = f'under prefix {prefix!r}' if prefix else 'as a bare backbone state dict'
        raise KeyError(
            f'{path}: backbone weights read {where} do not match the backbone '
            f'({type(backbone).__name__}); missing keys [{_listing(missing)}]; unexpected keys '
            f'[{_listing(unexpected)}]; prefixes tried: {list(prefixes)}')
    wrong = [f'{k} {tuple(sub[k].shape)} vs {tuple(v.shape)}' for k, v in expected.items()
             if tuple(sub[k].shape) != tuple(v.shape)]
    if wrong:
        raise ValueError(f'{path}: backbone weight shapes differ (checkpoint vs model): '
                         f'{_listing(wrong)}')
    backbone.load_state_dict(sub, strict=True)
    return prefix
