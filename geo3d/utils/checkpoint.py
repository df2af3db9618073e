"""Checkpoint loading that works on torch >= 2.6 without unpickling arbitrary code.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine 0.10.7 calls it
without the argument, so ``--resume`` fails on the message hub's ``HistoryBuffer`` and
``load_from`` fails on full training checkpoints. A training checkpoint written by mmengine holds,
besides tensors, only: ``HistoryBuffer`` objects, numpy arrays / scalars / dtypes, statistics
methods of ``HistoryBuffer`` (pickled as ``getattr(HistoryBuffer, 'mean')``) and the annealing
functions that some parameter schedulers keep in their state (``OneCycleParamScheduler``'s
``anneal_func``, pickled as ``getattr(OneCycleParamScheduler, '_annealing_cos')``).

geo3d therefore loads every local file with the *restricted* unpickler (``weights_only=True``)
extended by exactly those globals; ``getattr`` is replaced by a version that only returns
those two kinds of functions. Plain state dicts (published weights) need
none of these and load as usual. Anything else (a checkpoint holding other Python objects) is
refused with an error naming the file and the offending global; a user who trusts the file can
set ``GEO3D_TRUSTED_CHECKPOINTS=1`` (or pass ``trusted=True``) to load it with full pickle.
A checkpoint is a pickle: only load such files from sources you trust.

Importing this module registers :func:`load_local_checkpoint` as mmengine's loader for local
paths, so ``Runner.resume`` and ``load_from`` use it.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'GEO3D_TRUSTED_CHECKPOINTS'


def _param_scheduler_classes() -> list[type]:
    """Every parameter scheduler class mmengine defines (and their subclasses imported so far)."""
    from mmengine.optim.scheduler import param_scheduler as ps
    base = ps._ParamScheduler
    out, todo = [], [base]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    out += [c for c in vars(ps).values() if isinstance(c, type) and issubclass(c, base)]
    return list(dict.fromkeys(out))


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for the unpickler.

    Allowed: public methods of HistoryBuffer (class or object) and ``_annealing_*`` functions of
    mmengine parameter schedulers; everything else is refused.
    """
    if isinstance(name, str):
        is_buffer = obj is HistoryBuffer or isinstance(obj, HistoryBuffer)
        if is_buffer and not name.startswith('_') \
                and callable(getattr(HistoryBuffer, name, None)):
            return getattr(obj, name)
        sched = obj if isinstance(obj, type) else type(obj)
        if name.startswith('_annealing_') and sched in _param_scheduler_classes() \
                and callable(getattr(sched, name, None)):
            return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({type(obj).__name__}, {name!r}), which geo3d does not allow')


def _numpy_globals() -> list[Any]:
    """Globals numpy uses to pickle arrays, scalars and dtypes (numpy 1.x and 2.x paths)."""
    out: list[Any] = [np.dtype, np.ndarray]
    for mod_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        out += [(mod._reconstruct, f'{mod_name}._reconstruct'), (mod.scalar, f'{mod_name}.scalar')]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return out


def safe_checkpoint_globals() -> list[Any]:
    """The allow-list given to ``torch.serialization.safe_globals`` for training checkpoints."""
    return [HistoryBuffer, (_restricted_getattr, 'builtins.getattr'),
            (_restricted_getattr, '__builtin__.getattr'), *_numpy_globals(),
            *_param_scheduler_classes()]


def _trusted_from_env() -> bool:
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes')


def load_checkpoint_file(filename: str, map_location: Any = None,
                         trusted: bool | None = None) -> Any:
    """Load a local checkpoint file (a training checkpoint or a plain state dict).

    Args:
        filename: path of the ``.pth`` file.
        map_location: as in :func:`torch.load`.
        trusted: load with full pickle (arbitrary code!) instead of the restricted unpickler.
            None: read ``GEO3D_TRUSTED_CHECKPOINTS`` from the environment.

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: the file is not a checkpoint, is truncated, or needs globals outside the
            allow-list (the message names the file and the global).
    """
    filename = os.path.expanduser(str(filename))
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    if trusted is None:
        trusted = _trusted_from_env()
    if trusted:
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_checkpoint_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if 'geo3d' in ln or 'Unsupported global' in ln),
                      lines[-1] if lines else '')
        raise RuntimeError(
            f'{filename}: refused to unpickle ({detail}). The file holds Python '
            f'objects outside geo3d\'s allow-list for checkpoints. If you trust it, set '
            f'{TRUST_ENV}=1 to load it with full pickle.') from err
    except (RuntimeError, EOFError, OSError) as err:
        raise RuntimeError(f'{filename}: not a readable torch checkpoint ({err})') from err


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location: Any = None) -> Any:
    """mmengine's loader for local paths (replaces ``load_from_local``)."""
    return load_checkpoint_file(filename, map_location)
