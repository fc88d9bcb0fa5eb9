"""Mini-batch KSOM per epoch against the GEMM floor: the compiled step vs the step-by-step loop.

Issue 17, item 2 (target: <= 2x the floor per epoch at batch size >= 1024). One process;
each round times, for every case and batch size, one epoch of
:func:`somvq.algorithms.minibatch_pass_inplace` with each step compiled ("new") and through
the step-by-step loop ("old", ``algorithms._MINIBATCH_COMPILED = False``), order alternated
every round, and the float32 GEMM floor of the case (``benchmarks._worker.gemm_floor``, the
one benchmarks/run.py uses). Medians over the rounds; both paths' codebooks are checked
equal bit for bit.

Example::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \\
        python -m benchmarks.bench_minibatch --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks import data as bench_data
from benchmarks._worker import gemm_floor

CASES = {"gauss-100000-32": (16, 32), "gauss-1000000-16": (20, 20)}


def _epoch(compiled, X, W0, order, neighbourhood, grid, batch_size):
    from somvq import algorithms

    algorithms._MINIBATCH_COMPILED = compiled
    codebook = W0.copy()
    ema_count = np.ones(W0.shape[0])
    ema_sum = W0.astype(np.float64)
    start = time.perf_counter()
    algorithms.minibatch_pass_inplace(
        X,
        order,
        codebook,
        ema_count,
        ema_sum,
        neighbourhood,
        grid,
        0,
        batch_size=batch_size,
        decay=0.99,
        eps=1e-5,
    )
    return time.perf_counter() - start, codebook


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(CASES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--neighbourhood", default="hard")
    args = parser.parse_args(argv)

    from somvq.grids import Grid
    from somvq.neighbourhoods import Neighbourhood
    from somvq.parameters import DEFAULTS
    from somvq.schedules import Schedule

    print(f"load average {os.getloadavg()}, default batch_size {DEFAULTS['batch_size']}")
    for name in args.data:
        X = np.ascontiguousarray(bench_data.load(name), dtype=np.float32)
        shape = CASES.get(name, (16, 32))
        grid = Grid(shape)
        rng = np.random.default_rng(0)
        W0 = X[rng.choice(X.shape[0], grid.n_units, replace=False)].copy()
        order = rng.permutation(X.shape[0])
        nb = Neighbourhood(args.neighbourhood, Schedule("inverse_time", 4.0, 0.5, 0.1, 100.0), 0.1)
        times = {(bs, side): [] for bs in args.batch_sizes for side in ("old", "new")}
        floors = []
        for bs in args.batch_sizes:  # warm-up (compilation, caches) and the bit check
            _, a = _epoch(False, X, W0, order, nb, grid, bs)
            _, b = _epoch(True, X, W0, order, nb, grid, bs)
            assert np.array_equal(a, b), f"{name} batch {bs}: the compiled step changed the codebook"
        for r in range(args.rounds):
            for bs in args.batch_sizes:
                sides = ("old", "new") if r % 2 == 0 else ("new", "old")
                for side in sides:
                    times[bs, side].append(_epoch(side == "new", X, W0, order, nb, grid, bs)[0])
            floors.append(gemm_floor(X, W0, repeats=3))
        floor = statistics.median(floors)
        print(
            f"\n{name} {shape[0]}x{shape[1]}, {args.neighbourhood}: GEMM floor {floor * 1e3:.1f} ms "
            f"(median of {args.rounds} rounds; {min(floors) * 1e3:.1f}-{max(floors) * 1e3:.1f})"
        )
        print("batch  old ms/epoch (x floor)   new ms/epoch (x floor)   new/old (median of per-round ratios)")
        for bs in args.batch_sizes:
            old = statistics.median(times[bs, "old"])
            new = statistics.median(times[bs, "new"])
            ratio = statistics.median(n / o for n, o in zip(times[bs, "new"], times[bs, "old"]))
            print(
                f"{bs:5d}  {old * 1e3:9.1f} ({old / floor:5.2f}x)       {new * 1e3:9.1f} ({new / floor:5.2f}x)"
                f"       {ratio:5.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
