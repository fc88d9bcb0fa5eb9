"""Atomics and a spin barrier for compiled code running on several threads (no GIL).

Numba has no CPU atomics. These intrinsics emit LLVM's own: ``load atomic``, ``store
atomic`` and ``atomicrmw add``, all sequentially consistent (the sleep protocol of
:func:`wait_until` needs it; on x86 a seq_cst load is a plain load), on one element of an
int64 array, plus a CPU ``pause`` hint (``llvm.x86.sse2.pause`` on x86, a no-op
elsewhere), libc's ``sched_yield`` and ``syscall`` (Linux futex wait and wake), declared
by name in the module and resolved when the code is loaded, so cached code holds no
address: ``cache=True`` works.

:func:`barrier` is a counting barrier on a shared int64 array (``sync``): every thread
adds 1 to ``sync[ARRIVED]`` and waits until it reaches ``generation * n_threads``. The
count only grows (no reset, no sense flag), so a thread may leave and reach the next
barrier while the others are still leaving this one. A waiting thread spins with
``pause`` for :data:`SPINS` rounds, then sleeps on a futex until woken (see
:func:`wait_until` for why sleeping beats yielding on a loaded machine). ``sync[ABORT] != 0 (set by any thread that failed, from
Python) makes every wait return ``False`` at once, so an error on one thread never
leaves the other waiting for ever.

The atomics order the plain loads and stores around them too (seq_cst in LLVM's
memory model), so what one thread wrote before a barrier is seen by
the others after it.
"""

from __future__ import annotations

import platform
import sys

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: Indices into the shared ``sync`` array: barrier arrivals, the abort flag, two
#: counters for task queues (tasks claimed, tasks done), a stop mark (their users'), the
#: threads asleep in :func:`wait_until`, the word they sleep on (a futex), and one more
#: counter for the user's own use.
ARRIVED, ABORT, CLAIMED, DONE, STOP, SLEEPERS, WAKE, COUNTER = 0, 1, 2, 3, 4, 5, 6, 7
#: Length of the ``sync`` array (one cache line of int64).
SYNC_SIZE = 8

#: ``pause`` rounds before a waiting thread sleeps (~18 us on this machine's 23-ns
#: ``pause``: the waits of a quiet machine mostly end within them; longer spins cost a
#: loaded machine the CPU time the awaited thread needs).
SPINS = 800

#: Longest sleep of a waiting thread (ns): a safety net for a flag set from Python.
SLEEP_NS = 1_000_000

_LINUX = sys.platform.startswith("linux")
#: ``SYS_futex`` of the Linux architectures with a known number (else: sched_yield).
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine().lower())
_FUTEX = _LINUX and _SYS_FUTEX is not None
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _element_pointer(context, builder, array_type, array_value, index):
    ary = context.make_array(array_type)(context, builder, array_value)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index], wraparound=False)


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` read atomically (seq_cst; int64 array)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return types.int64(array, types.intp), codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value`` atomically (seq_cst; int64 array)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(value, ptr, "seq_cst", 8)
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


def _syscall(builder, args):
    i64 = ir.IntType(64)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    return builder.call(fn, args)


@intrinsic
def futex_wait(typingctx, array, index, expected, timeout_ns):
    """Sleep while the low 32 bits of ``array[index]`` equal ``expected`` (Linux futex,
    private, at most ``timeout_ns``); elsewhere ``sched_yield``. May return early."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        if not _FUTEX:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"
            )
            builder.call(fn, [])
            return context.get_dummy_value()
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        expected = builder.trunc(context.cast(builder, args[2], sig.args[2], types.int64), ir.IntType(32))
        timeout = context.cast(builder, args[3], sig.args[3], types.int64)
        spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        billion = ir.Constant(i64, 1_000_000_000)
        builder.store(builder.sdiv(timeout, billion), builder.gep(spec, [ir.Constant(ir.IntType(32), 0)] * 2))
        builder.store(
            builder.srem(timeout, billion),
            builder.gep(spec, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 1)]),
        )
        _syscall(
            builder,
            [
                ir.Constant(i64, _SYS_FUTEX),
                builder.ptrtoint(ptr, i64),
                ir.Constant(i64, _FUTEX_WAIT_PRIVATE),
                builder.zext(expected, i64),
                builder.ptrtoint(spec, i64),
                ir.Constant(i64, 0),
                ir.Constant(i64, 0),
            ],
        )
        return context.get_dummy_value()

    return types.void(array, types.intp, types.int64, types.int64), codegen


@intrinsic
def futex_wake(typingctx, array, index):
    """Wake every thread asleep in :func:`futex_wait` on ``array[index]`` (Linux)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1):
        return None

    def codegen(context, builder, sig, args):
        if _FUTEX:
            i64 = ir.IntType(64)
            ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
            _syscall(
                builder,
                [
                    ir.Constant(i64, _SYS_FUTEX),
                    builder.ptrtoint(ptr, i64),
                    ir.Constant(i64, _FUTEX_WAKE_PRIVATE),
                    ir.Constant(i64, 2**31 - 1),
                    ir.Constant(i64, 0),
                    ir.Constant(i64, 0),
                    ir.Constant(i64, 0),
                ],
            )
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


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
    """Wait until ``sync[index] >= target``; ``False`` if ``sync[ABORT]`` or
    ``sync[STOP]`` was set first (or is set).

    Spins with ``pause`` for :data:`SPINS` rounds, then sleeps on ``sync[WAKE]`` (a futex;
    ``sched_yield`` off Linux) until :func:`wake` or :data:`SLEEP_NS`. Sleeping, not
    yielding, matters on a loaded machine: a core whose thread sleeps is idle, so the
    scheduler can move the thread being waited for onto it; a spinning or yielding
    thread keeps its core busy and the other thread queued behind someone else's.
    """
    spins = 0
    while atomic_load(sync, index) < target:
        if atomic_load(sync, ABORT) != 0 or atomic_load(sync, STOP) != 0:
            return False
        if spins < SPINS:
            cpu_pause()
            spins += 1
            continue
        # announce the sleep, then check again: a waker that changed the value before
        # seeing SLEEPERS > 0 is seen here (every access is sequentially consistent)
        seen = atomic_load(sync, WAKE)
        atomic_add(sync, SLEEPERS, 1)
        if (
            atomic_load(sync, index) < target
            and atomic_load(sync, ABORT) == 0
            and atomic_load(sync, STOP) == 0
        ):
            futex_wait(sync, WAKE, seen, SLEEP_NS)
        atomic_add(sync, SLEEPERS, -1)
    return atomic_load(sync, ABORT) == 0 and atomic_load(sync, STOP) == 0


@njit(cache=True, nogil=True)
def wake(sync):
    """Wake the threads asleep in :func:`wait_until` (call after changing a value they
    may wait for: cheap when none sleeps)."""
    if atomic_load(sync, SLEEPERS) > 0:
        atomic_add(sync, WAKE, 1)
        futex_wake(sync, WAKE)


@njit(cache=True, nogil=True)
def add_and_wake(sync, index, value):
    """``sync[index] += value`` (atomically), then :func:`wake`."""
    atomic_add(sync, index, value)
    wake(sync)


@njit(cache=True, nogil=True)
def barrier(sync, generation, n_threads):
    """Barrier number ``generation`` (1, 2, ...) of ``n_threads`` threads on ``sync``.

    Returns ``False`` when a thread aborted (``sync[ABORT] != 0``): the caller must stop.
    """
    if n_threads <= 1:
        return atomic_load(sync, ABORT) == 0
    add_and_wake(sync, ARRIVED, 1)
    return wait_until(sync, ARRIVED, generation * n_threads)
