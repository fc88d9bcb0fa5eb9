"""Runs one library on one data set in a fresh process; prints one JSON line.

Usage: ``python -m benchmarks._worker LIB DATA.npy INIT.npy ROWS COLS EPOCHS OUT.npy``.
The training call is timed with ``time.perf_counter``; peak memory is the growth of the
process's maximum resident set size (``getrusage``) during that call, over the baseline
reached after loading the data and a small untimed warm-up run.
"""

from __future__ import annotations

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
    from benchmarks.trainers import TRAINERS

    train = TRAINERS[lib][0]
    if lib.startswith("somoclu"):
        try:
            import somoclu  # noqa: F401
        except Exception as exc:  # reported in the table, not fatal
            result["error"] = f"somoclu does not import: {exc!r}"
            print(json.dumps(result))
            return
    # untimed warm-up: imports, JIT compilation, first-call allocations
    train(np.ascontiguousarray(X[: min(X.shape[0], 512)]), W0, shape, 1)
    baseline = _maxrss_bytes()
    t = time.perf_counter()
    codebook = train(X, W0, shape, epochs)
    result["seconds"] = time.perf_counter() - t
    result["peak_bytes"] = max(0, _maxrss_bytes() - baseline)
    np.save(out_path, np.asarray(codebook, dtype=np.float32))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
