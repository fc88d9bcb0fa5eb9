"""The kernels' explicit Numba signatures can never become ambiguous.

Numba keeps one global table of the type conversions it has performed. Once any kernel has
taken a writable C array through a read-only "A" signature, a writable C array converts to
a read-only "C" and to a read-only "A" signature at the same cost, so a kernel that offers
both for one parameter raises "Ambiguous overloading", depending on which kernel happened
to run first in the process (``somvq/_kernels/_signatures.py`` states the rule).
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import subprocess
import sys
import textwrap

from numba import types
from numba.core.registry import CPUDispatcher

import somvq._kernels


def _cpu_dispatchers():
    for info in pkgutil.iter_modules(somvq._kernels.__path__):
        if info.name.startswith("cuda"):  # device kernels: their own simulator suite
            continue
        module = importlib.import_module(f"somvq._kernels.{info.name}")
        for name, value in vars(module).items():
            if (
                isinstance(value, CPUDispatcher)
                and value.py_func.__module__ == module.__name__
                # explicit signature lists only (compilation disabled after them): a lazily
                # compiled kernel compiles an exact specialisation instead of converting
                and not value._can_compile
            ):
                yield f"{module.__name__}.{name}", value


def _equally_reachable(a, b):
    """A writable C array converts to both ``a`` and ``b`` at the same cost (or they are equal)."""
    if a == b:
        return True
    return (
        isinstance(a, types.Array)
        and isinstance(b, types.Array)
        and (a.dtype, a.ndim) == (b.dtype, b.ndim)
        and not a.mutable  # read-only
        and not b.mutable
        and {a.layout, b.layout} == {"C", "A"}
    )


def test_no_kernel_offers_two_equally_good_signatures():
    checked = 0
    clashes = []
    for name, dispatcher in _cpu_dispatchers():
        signatures = [tuple(s.args) for s in dispatcher.nopython_signatures]
        checked += len(signatures) > 1
        for first, second in itertools.combinations(signatures, 2):
            if len(first) == len(second) and all(map(_equally_reachable, first, second)):
                clashes.append(f"{name}: {first} / {second}")
    assert checked >= 5, "found too few multi-signature kernels: is the scan looking?"
    assert not clashes, "\n".join(clashes)


def test_a_read_only_a_conversion_does_not_break_the_online_kernel():
    # The sequence that used to fail: the mini-batch pass reads a writable C array through
    # its read-only "A" signature, then the general online kernel gets writable C arrays.
    code = textwrap.dedent(
        """
        import numpy as np
        from somvq import KSOM
        from somvq._kernels.cpu_online import online_pass
        from somvq.grids import Grid
        from somvq.neighbourhoods import Neighbourhood
        from somvq.schedules import Schedule

        rng = np.random.default_rng(0)
        grid = Grid((3, 4), topology="hexagonal")
        for dtype in (np.float32, np.float64):
            X = rng.normal(size=(400, 3)).astype(dtype)
            assert X.flags.c_contiguous and X.flags.writeable
            # 25 steps a pass: the compiled pass (algorithms._MIN_COMPILED_STEPS)
            KSOM(grid=(3, 4), algorithm="minibatch", batch_size=16, n_epochs=1,
                 random_state=0).fit(X)
            nb = Neighbourhood("gaussian", Schedule("exponential", 2.0, 0.5, 0.1, 399.0), 0.1)
            codebook = X[:12].copy()
            online_pass(
                X, codebook, np.arange(400), grid.distances, nb.code, nb.radius.code,
                nb.kernel_parameters(), 0, np.array([0.5, 0.01, 0.1, 399.0]),
                np.ones(12), 0,
            )
            assert np.isfinite(codebook).all()
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
