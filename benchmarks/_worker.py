"""Runs one library on one data set in a fresh process; prints one JSON line.

Usage: ``python -m benchmarks._worker LIB DATA.npy INIT.npy ROWS COLS EPOCHS OUT.npy``.
The training call is timed with ``time.perf_counter``; peak memory is the growth of the
process's maximum resident set size (``getrusage``) during that call, over the baseline
reached after loading the data and a small untimed warm-up run.

For somvq's trainers (those taking ``callback``), the JSON line also holds
``late_seconds``: the mean time per epoch over the last third of the epochs
(``epochs // 3`` of them, at least 3 epochs), from timestamps taken by ``KSOM.fit``'s
per-epoch callback; so it excludes setup and the final ``labels_`` pass. The trainers in
``benchmarks.trainers.NAN_DATA`` get ``X`` with NaN holes (made before timing).
"""

from __future__ import annotations

import inspect
import json
import resource
import sys
import time

import numpy as np


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gemm_floor(X: np.ndarray, W: np.ndarray, repeats: int = 5) -> float:
    """Fastest of several float32 X.W^T products: one big product and 4096-row blocks."""
    Wt = W.T
    best = np.inf
    n = X.shape[0]
    rows = min(n, 4096)
    block_out = np.empty((rows, W.shape[0]), dtype=np.float32)
    full_out = np.empty((n, W.shape[0]), dtype=np.float32) if n * W.shape[0] <= 2**29 else None
    for _ in range(repeats):
        if full_out is not None:
            t = time.perf_counter()
            np.matmul(X, Wt, out=full_out)
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            np.matmul(X[start:stop], Wt, out=block_out[: stop - start])
        best = min(best, time.perf_counter() - t)
    return best


def late_epoch_seconds(start: float, stamps: list[float], epochs: int) -> float | None:
    """Mean seconds per epoch over the last ``epochs // 3`` epochs, from end-of-epoch stamps.

    ``None`` when there is no last third to time (fewer than 3 epochs) or the stamps are not
    one per epoch (no callback, or a fit that stopped early).
    """
    late = epochs // 3
    if late < 1 or len(stamps) != epochs:
        return None
    ends = [start, *stamps]
    return (ends[-1] - ends[-1 - late]) / late


def main(argv: list[str]) -> None:
    lib, data_path, init_path, rows, cols, epochs, out_path = argv
    shape = (int(rows), int(cols))
    epochs = int(epochs)
    X = np.load(data_path)
    W0 = np.load(init_path)
    result: dict = {"lib": lib}
    if lib == "gemm":
        result["seconds"] = gemm_floor(X, W0)
        print(json.dumps(result))
        return
    from benchmarks.trainers import NAN_DATA, NAN_FRACTION, TRAINERS

    train = TRAINERS[lib][0]
    if lib in NAN_DATA:
        from benchmarks.data import with_holes

        X = with_holes(X, NAN_FRACTION)
    if lib.startswith("somoclu"):
        try:
            import somoclu  # noqa: F401
        except Exception as exc:  # reported in the table, not fatal
            result["error"] = f"somoclu does not import: {exc!r}"
            print(json.dumps(result))
            return
    # untimed warm-up: imports, JIT compilation, first-call allocations, on at least as many
    # rows as units (scikit-learn refuses fewer); somvq's on enough rows and passes for
    # bmu_search="auto" to take the pruned path (and load its kernels) when the timed fit will
    timed = "callback" in inspect.signature(train).parameters
    warm_rows, warm_epochs = max(512, W0.shape[0]), 1
    if timed:
        from somvq.parameters import PRUNED_MIN_ROWS, pruned_min_passes

        warm_rows = max(warm_rows, PRUNED_MIN_ROWS)
        # the passes "auto" needs to prune k-means on the warm-up rows, when the timed fit
        # has enough passes to prune (fewer rows may need more passes: pruned_min_passes)
        needed = pruned_min_passes(min(X.shape[0], warm_rows), X.shape[1])
        prunes = epochs >= pruned_min_passes(X.shape[0], X.shape[1])
        warm_epochs = needed if prunes else min(epochs, needed)
    train(np.ascontiguousarray(X[: min(X.shape[0], warm_rows)]), W0, shape, warm_epochs)
    stamps: list[float] = []
    kwargs = {"callback": lambda *args: stamps.append(time.perf_counter())} if timed else {}
    baseline = _maxrss_bytes()
    t = time.perf_counter()
    codebook = train(X, W0, shape, epochs, **kwargs)
    result["seconds"] = time.perf_counter() - t
    late = late_epoch_seconds(t, stamps, epochs)
    if late is not None:
        result["late_seconds"] = late
    result["peak_bytes"] = max(0, _maxrss_bytes() - baseline)
    np.save(out_path, np.asarray(codebook, dtype=np.float32))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
