"""How much memory a fit needs, checked before anything large is allocated.

Most of a fit is O(K D) (codebook, EMA state, statistics) plus O(block K) for the BMU
search. Only some kernels need the K x K grid-distance matrix (8 K^2 bytes) and, for batch
and mini-batch KSOM, the dense neighbourhood matrix H_t built from it (with its
temporaries, about 6 such matrices at the peak, measured with tracemalloc): hexagonal
grids, rectangular grids of more than two axes with "hard", and the kernels without a
separable or compact form ("exponential", "bubble", "triangle", "cut_gaussian",
"mexican_hat") in batch/mini-batch KSOM. The separable "gaussian" (any rectangular grid),
"hard" (1-2 axes) and "none", and online KSOM's compact kernels on 1-2 axes, need no
K x K array at all.

:func:`check_fit_memory` estimates the peak and raises a ``ValueError`` naming the grid
when it exceeds the memory available on this machine (psutil when installed, else
``/proc/meminfo``'s MemAvailable, else ``os.sysconf``; no check when none is known).
"""

from __future__ import annotations

import os
from typing import Any

from .neighbourhoods import NEIGHBOURHOODS

__all__ = ["available_memory", "needs_grid_distances", "estimate_fit_bytes", "check_fit_memory"]

#: Peak K x K float64 matrices of a dense batch/mini-batch step (distances, H and the
#: temporaries of building H), and of online KSOM's general kernel (distances, built in
#: blocks).
DENSE_SMOOTHING_MATRICES = 7.0
DENSE_ONLINE_MATRICES = 2.0
#: K x D float64 arrays alive at once (codebook and its copies, EMA sums, statistics and
#: their smoothed copies, scratch).
STATE_ARRAYS = 8
_BOX_KERNELS = ("none", "hard", "bubble", "triangle", "cut_gaussian")
#: A fit estimated to need at most this many bytes is not checked against the system's
#: available memory (querying it costs ~1 ms, 6% of a 10-epoch digits fit).
ALWAYS_AVAILABLE = 16 * 2**20


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation here, or None when unknown."""
    try:
        import psutil  # optional: not a dependency

        return int(psutil.virtual_memory().available)
    except Exception:  # ImportError, or psutil unsupported on this platform
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def needs_grid_distances(algorithm: str, neighbourhood: str, grid: Any, backend: str = "cpu") -> bool:
    """Whether a fit builds the K x K grid-distance matrix (and so O(K^2) memory).

    Mirrors :func:`somvq.neighbourhoods.smoothing_operator` (batch, mini-batch) and the
    online fast paths of :func:`somvq.algorithms.online_pass_inplace`; a test holds them equal.
    """
    if backend == "cuda":
        return True  # the device kernels read the distance matrix
    rectangular = grid.topology == "rectangular"
    if algorithm == "online":
        return not (
            rectangular and grid.ndim <= 2 and (neighbourhood == "gaussian" or neighbourhood in _BOX_KERNELS)
        )
    if neighbourhood == "none":
        return False
    if rectangular and (neighbourhood == "gaussian" or (neighbourhood == "hard" and grid.ndim <= 2)):
        return False
    return True


def estimate_fit_bytes(
    algorithm: str,
    neighbourhood: str,
    grid: Any,
    *,
    n_samples: int = 0,
    n_features: int = 1,
    backend: str = "cpu",
    chunk_rows: int = 512,
    pruned: bool = False,
) -> tuple[int, bool]:
    """Estimated peak bytes of a fit, and whether K x K matrices are part of it.

    ``pruned``: the fit runs the pruned BMU search (:func:`somvq.parameters.use_pruned_search`),
    whose bounds are kept for every row.
    """
    n_units = grid.n_units
    state = STATE_ARRAYS * n_units * max(n_features, 1) * 8
    search = 2 * chunk_rows * n_units * 8
    data = n_samples * (max(n_features, 1) * 8 + 16)
    if pruned:
        # The pruned search's bounds, 24 + 4 G bytes a row (somvq/_kernels/cpu_pruned.py):
        # G groups of units for k-means, one bound under a shrinking neighbourhood.
        from ._kernels.config import BALL_FRACTION, BALL_TABLE_BYTES, default_groups

        groups = default_groups(n_units) if neighbourhood == "none" else 1
        data += n_samples * (24 + 4 * groups)
        if neighbourhood != "none":
            # the ball's lists of K / 8 units for every unit (16 bytes a listed unit, and
            # last pass's units, 8, kept as the next pass's seed) and their table in lanes
            data += n_units * int(BALL_FRACTION * n_units) * 24 + BALL_TABLE_BYTES
    dense = needs_grid_distances(algorithm, neighbourhood, grid, backend)
    matrices = 0.0
    if dense:
        factor = (
            DENSE_ONLINE_MATRICES if algorithm == "online" or backend == "cuda" else DENSE_SMOOTHING_MATRICES
        )
        matrices = factor * 8.0 * float(n_units) ** 2
    return int(state + search + data + matrices), dense


def check_fit_memory(
    estimator: Any, grid: Any, shape: tuple[int, int] | None = None, *, pruned: bool = False
) -> None:
    """Raise a ValueError naming the grid when a fit would need more memory than there is.

    ``shape``: the training data's ``(n_samples, n_features)``; None (no data yet, as in
    ``check_parameters``) counts one feature and no rows, a lower bound. ``pruned``: the
    fit runs the pruned BMU search (its bounds are counted).
    """
    if estimator.neighbourhood not in NEIGHBOURHOODS:
        return  # reported by the parameter validation
    n_samples, n_features = shape if shape is not None else (0, 1)
    needed, dense = estimate_fit_bytes(
        estimator.algorithm,
        estimator.neighbourhood,
        grid,
        n_samples=n_samples,
        n_features=n_features,
        backend=estimator.backend,
        pruned=pruned,
    )
    if needed <= ALWAYS_AVAILABLE:
        return  # not worth the query (psutil: ~1 ms, 6% of a digits fit)
    available = available_memory()
    if available is None or needed <= available:
        return
    shape_text = "x".join(str(s) for s in grid.shape)
    if dense:
        why = (
            f"K x K grid-distance and neighbourhood matrices (8 K^2 = {8 * grid.n_units**2 / 2**30:.3g} GiB each) for "
            f"neighbourhood={estimator.neighbourhood!r} on a {grid.topology} grid with algorithm={estimator.algorithm!r}"
        )
        hint = (
            "Use a smaller grid, or a rectangular grid of 1-2 axes with neighbourhood='gaussian' or 'hard' "
            "(separable: no K x K matrix)."
        )
    elif pruned:
        why = (
            f"the codebook and training state of {grid.n_units} units x {max(n_features, 1)} features, "
            f"and the pruned BMU search's bounds for {n_samples} rows"
        )
        hint = "Use bmu_search='full' (no bounds; the same result), or a smaller grid."
    else:
        why = f"the codebook and training state of {grid.n_units} units x {max(n_features, 1)} features"
        hint = "Use a smaller grid."
    raise ValueError(
        f"grid={shape_text} ({grid.n_units} units) needs about {needed / 2**30:.3g} GiB to fit ({why}), "
        f"more than the {available / 2**30:.3g} GiB of memory available here. {hint}"
    )
