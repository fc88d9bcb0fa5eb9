"""Atomics and a spin barrier for compiled code running on several threads (no GIL).

Numba has no CPU atomics. These intrinsics emit LLVM's own: ``load atomic`` (acquire),
``store atomic`` (release) and ``atomicrmw add`` (sequentially consistent) on one
element of an int64 array, plus a CPU ``pause`` hint (``llvm.x86.sse2.pause`` on x86, a
no-op elsewhere) and libc's ``sched_yield`` (declared by name in the module and resolved
when the code is loaded, so cached code holds no address: ``cache=True`` works).

:func:`barrier` is a counting barrier on a shared int64 array (``sync``): every thread
adds 1 to ``sync[ARRIVED]`` and waits until it reaches ``generation * n_threads``. The
count only grows (no reset, no sense flag), so a thread may leave and reach the next
barrier while the others are still leaving this one. A waiting thread spins with
``pause`` for :data:`SPINS` rounds, then calls ``sched_yield`` between checks: on a
loaded machine the thread it waits for may need this core, and a pure spin would burn
the time slice it needs. ``sync[ABORT] != 0`` (set by any thread that failed, from
Python) makes every wait return ``False`` at once, so an error on one thread never
leaves the other waiting for ever.

The atomics order the plain loads and stores around them too (acquire / release /
seq_cst in LLVM's memory model), so what one thread wrote before a barrier is seen by
the others after it.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: Indices into the shared ``sync`` array.
ARRIVED, ABORT, CLAIMED = 0, 1, 2
#: Length of the ``sync`` array (one cache line of int64).
SYNC_SIZE = 8

#: ``pause`` rounds before a waiting thread starts yielding its core (about 5-30 us).
SPINS = 2000

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _element_pointer(context, builder, array_type, array_value, index):
    ary = context.make_array(array_type)(context, builder, array_value)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index], wraparound=False)


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` read with acquire ordering (int64 array)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(array, types.intp), codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value`` with release ordering (int64 array)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(value, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(array, types.intp, types.int64), codegen


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically (seq_cst); returns the value before the add."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, value, "seq_cst")

    return types.int64(array, types.intp, types.int64), codegen


@intrinsic
def cpu_pause(typingctx):
    """The CPU's spin-wait hint (``pause`` on x86; nothing elsewhere)."""

    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
            )
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def sched_yield(typingctx):
    """libc's ``sched_yield()`` (gives the core to another runnable thread, if any)."""

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"
        )
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cycles(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: ``rdtsc`` on x86; 0 where the
    target has none): a cheap clock for the pass's per-phase profile."""

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return types.int64(), codegen


@njit(cache=True, nogil=True)
def cycle_counter():
    """:func:`cycles` from Python (to calibrate it against ``time.perf_counter``)."""
    return cycles()


@njit(cache=True, nogil=True)
def wait_until(sync, index, target):
    """Wait until ``sync[index] >= target``; ``False`` if ``sync[ABORT]`` was set first.

    Spins with ``pause`` for :data:`SPINS` rounds, then yields the core between checks.
    """
    spins = 0
    while atomic_load(sync, index) < target:
        if atomic_load(sync, ABORT) != 0:
            return False
        if spins < SPINS:
            cpu_pause()
            spins += 1
        else:
            sched_yield()
    return atomic_load(sync, ABORT) == 0


@njit(cache=True, nogil=True)
def barrier(sync, generation, n_threads):
    """Barrier number ``generation`` (1, 2, ...) of ``n_threads`` threads on ``sync``.

    Returns ``False`` when a thread aborted (``sync[ABORT] != 0``): the caller must stop.
    """
    if n_threads <= 1:
        return atomic_load(sync, ABORT) == 0
    atomic_add(sync, ARRIVED, 1)
    return wait_until(sync, ARRIVED, generation * n_threads)
