"""Fixes for spconv 2.3.x on CPU (applied once, before geo3d uses spconv).

What is broken in the CPU wheel (spconv 2.3.8, cumm 0.7.11), and why:

1. **Backward crashes on CPU.** ``spconv.pytorch.ops.indice_conv_backward`` (and a few other
   ops) call ``spconv.pytorch.cppcore.get_current_stream()`` unconditionally, even for CPU
   tensors, and that function calls ``torch.cuda.current_stream()``, which raises on a machine
   without a CUDA driver (or on a CPU-only torch). The CPU branches never use the stream.
   Fix: replace ``get_current_stream`` (in every loaded ``spconv.*`` module that imported it by
   name) with a version that returns the real current CUDA stream whenever CUDA is available
   (so GPU behaviour is unchanged) and ``0`` otherwise.

2. **The forward (and dx of the backward) is silently wrong with more than one OpenMP thread.**
   ``SpconvOps.scatter_add_cpu`` (``GatherCPU::scatter_add`` in spconv's generated C++) declares
   its two row pointers (``buf``, ``out_ptr``) *outside* the OpenMP parallel lambda and captures
   them by reference, so all threads share them: a thread can add its row into the row another
   thread just selected. Results are wrong in a few percent of calls even with unique indices,
   and differ between identical runs. It links against torch's libgomp, so
   ``torch.set_num_threads`` decides how many threads race. Fix: ``spconv.pytorch.ops`` looks
   ``SpconvOps`` up as a module global; we replace that global with a proxy that forwards every
   attribute to the real class except ``scatter_add_cpu``, which is done with
   ``torch.Tensor.index_add_`` on zero-copy torch views of the tensorview buffers. Dtypes that
   numpy cannot view (none reach this op today: spconv's own torch->tv conversion refuses
   bfloat16) fall back to the original kernel with torch limited to one thread. GPU paths do
   not call ``scatter_add_cpu`` and are untouched.

Checked and NOT affected: ``gather_cpu`` (per-row pointers are locals) and the CPU max-pool
kernels ``maxpool_forward_cpu`` / ``maxpool_backward_cpu`` (locals too, and within one kernel
offset every output / input row appears at most once). ``tests/ops/test_spconv_cpu.py`` checks
``SparseMaxPool3d`` against a dense max-pool with 2 threads. Note a semantic quirk that is the
same on CPU and GPU: spconv's max-pool starts from zeros, so it returns ``max(0, max inputs)``,
not the max of negative inputs.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import torch

_APPLIED = False
_ORIG_GET_CURRENT_STREAM: Callable[[], int] | None = None


def _current_stream_or_zero() -> int:
    """The current CUDA stream handle when CUDA is available (spconv's own behaviour), else 0."""
    if torch.cuda.is_available():
        assert _ORIG_GET_CURRENT_STREAM is not None
        return _ORIG_GET_CURRENT_STREAM()
    return 0


class _CpuSafeSpconvOps:
    """Stand-in for ``SpconvOps`` in ``spconv.pytorch.ops``; only ``scatter_add_cpu`` differs."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def scatter_add_cpu(self, out_tv: Any, buf_tv: Any, idx_tv: Any) -> None:
        """``out[idx[i]] += buf[i]`` for i < n: out (M, C), buf (>=n, C), idx (n,) int32."""
        try:
            out = torch.from_numpy(out_tv.numpy_view())
            buf = torch.from_numpy(buf_tv.numpy_view())
            idx = torch.from_numpy(idx_tv.numpy_view())
        except (KeyError, TypeError, ValueError, RuntimeError):
            self._scatter_add_single_thread(out_tv, buf_tv, idx_tv)
            return
        n = idx.shape[0]
        if n:
            out.index_add_(0, idx, buf[:n])

    def _scatter_add_single_thread(self, out_tv: Any, buf_tv: Any, idx_tv: Any) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._real.scatter_add_cpu(out_tv, buf_tv, idx_tv)
        finally:
            torch.set_num_threads(threads)


def apply_spconv_cpu_fixes() -> None:
    """Patch spconv's Python layer (idempotent): CPU backward w/o CUDA, race-free scatter-add."""
    global _APPLIED, _ORIG_GET_CURRENT_STREAM
    if _APPLIED:
        return
    import spconv.pytorch  # noqa: F401  (loads every spconv.pytorch submodule)
    import spconv.pytorch.cppcore as cppcore
    import spconv.pytorch.ops as ops

    # Fix 1: stream lookup.
    orig = cppcore.get_current_stream
    if orig is not _current_stream_or_zero:
        _ORIG_GET_CURRENT_STREAM = orig
        for name, mod in list(sys.modules.items()):
            if (name == 'spconv' or name.startswith('spconv.')) and mod is not None \
                    and getattr(mod, 'get_current_stream', None) is orig:
                setattr(mod, 'get_current_stream', _current_stream_or_zero)

    # Fix 2: CPU scatter-add.
    if not isinstance(ops.SpconvOps, _CpuSafeSpconvOps):
        ops.SpconvOps = _CpuSafeSpconvOps(ops.SpconvOps)
    _APPLIED = True
