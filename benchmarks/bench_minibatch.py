"""Mini-batch KSOM per epoch against the GEMM floor: the compiled pass vs earlier versions.

Issue 17, item 2 (target: <= 2x the floor per epoch at batch size >= 1024). One process;
each round times, for every case and batch size, one epoch of
:func:`somvq.algorithms.minibatch_pass_inplace` on each "side", order rotated every
round, and the float32 GEMM floor of the case (``benchmarks._worker.gemm_floor``, the one
benchmarks/run.py uses). The sides:

* ``new``: this checkout (one compiled call per thread per chunk, spin barriers);
* ``old``: ``somvq/_kernels/cpu_minibatch_step.py`` as it was at ``--old-rev`` (default
  62edb84: one compiled call per block and per step, a queue hand-off per step), loaded
  from git into this process with that revision's ``cpu_bmu`` (the ranking:
  :mod:`benchmarks._revision`) and swapped in for the pass (it runs with this checkout's
  other kernels);
* ``loop``: the step-by-step loop (``algorithms._MINIBATCH_COMPILED = False``).

Medians over the rounds, the median of the per-round ratios new/old, the process's CPU
time per epoch (both threads; less sensitive to other load than the wall time), and the
time the new pass's threads spent per step in each phase (``cpu_minibatch_step.last_profile``:
cycle-counter stamps inside the compiled pass). Every side's codebook is checked equal
bit for bit first.

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
from benchmarks._revision import load_kernels
from benchmarks._worker import gemm_floor

CASES = {"gauss-100000-32": (16, 32), "gauss-1000000-16": (20, 20)}
_SETTLE_SECONDS = 1.0
_CPU_TIMES: dict = {}  # (side, batch size) -> CPU seconds of the process per timed epoch


def _epoch(side, passes, X, W0, order, neighbourhood, grid, batch_size):
    from somvq import algorithms
    from somvq._kernels import cpu_minibatch_step

    algorithms._MINIBATCH_COMPILED = side != "loop"
    cpu_minibatch_step.minibatch_pass = passes.get(side, passes["new"])
    codebook = W0.copy()
    ema_count = np.ones(W0.shape[0])
    ema_sum = W0.astype(np.float64)
    start = time.perf_counter()
    cpu = time.process_time()
    try:
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
    finally:
        cpu_minibatch_step.minibatch_pass = passes["new"]
        algorithms._MINIBATCH_COMPILED = True
    _CPU_TIMES.setdefault((side, batch_size), []).append(time.process_time() - cpu)
    return time.perf_counter() - start, codebook


def _profile_line(profile) -> str:
    if not profile or not profile["steps"]:
        return "n/a"
    per_step = profile["seconds"] / profile["steps"] * 1e6
    parts = []
    for tid, row in enumerate(per_step):
        phases = ", ".join(f"{name} {us:.0f}" for name, us in zip(profile["phases"], row))
        parts.append(f"thread {tid}: {phases}")
    return "; ".join(parts) + " (us a step)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(CASES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--neighbourhood", default="hard")
    parser.add_argument("--sides", nargs="+", default=["old", "new"], choices=["loop", "old", "new"])
    parser.add_argument("--old-rev", default="62edb84")
    parser.add_argument("--map", help="map shape for every case, e.g. 10x10 (default: the case's own)")
    args = parser.parse_args(argv)

    from somvq._kernels import cpu_minibatch_step
    from somvq.grids import Grid
    from somvq.neighbourhoods import Neighbourhood
    from somvq.parameters import DEFAULTS
    from somvq.schedules import Schedule

    passes = {"new": cpu_minibatch_step.minibatch_pass}
    if "old" in args.sides:
        old = load_kernels(args.old_rev, ["cpu_bmu", "cpu_minibatch_step"])
        passes["old"] = old["cpu_minibatch_step"].minibatch_pass
    sides = list(args.sides)
    print(f"load average {os.getloadavg()}, default batch_size {DEFAULTS['batch_size']}, sides {sides}")
    for name in args.data:
        X = np.ascontiguousarray(bench_data.load(name), dtype=np.float32)
        shape = tuple(int(v) for v in args.map.split("x")) if args.map else CASES.get(name, (16, 32))
        grid = Grid(shape)
        rng = np.random.default_rng(0)
        W0 = X[rng.choice(X.shape[0], grid.n_units, replace=False)].copy()
        order = rng.permutation(X.shape[0])
        nb = Neighbourhood(args.neighbourhood, Schedule("inverse_time", 4.0, 0.5, 0.1, 100.0), 0.1)
        times = {(bs, side): [] for bs in args.batch_sizes for side in sides}
        profiles = {bs: [] for bs in args.batch_sizes}
        floors = []
        _CPU_TIMES.clear()
        for bs in args.batch_sizes:  # warm-up (compilation, caches) and the bit check
            results = [_epoch(side, passes, X, W0, order, nb, grid, bs)[1] for side in sides]
            for side, result in zip(sides[1:], results[1:]):
                assert np.array_equal(results[0], result), f"{name} batch {bs}: {side} changed the codebook"
        for r in range(args.rounds):
            for bs in args.batch_sizes:
                rotated = sides[r % len(sides) :] + sides[: r % len(sides)]
                for side in rotated:
                    times[bs, side].append(_epoch(side, passes, X, W0, order, nb, grid, bs)[0])
                    if side == "new":
                        profiles[bs].append(cpu_minibatch_step.last_profile())
            floors.append(gemm_floor(X, W0, repeats=3))
            # OpenBLAS's threads spin for a while after the floor's 2-thread product; an
            # epoch started meanwhile shares the cores with them (measured: the pass's
            # update 3-4x slower in the round after)
            time.sleep(_SETTLE_SECONDS)
        floor = statistics.median(floors)
        print(
            f"\n{name} {shape[0]}x{shape[1]}, {args.neighbourhood}: GEMM floor {floor * 1e3:.1f} ms "
            f"(median of {args.rounds} rounds; {min(floors) * 1e3:.1f}-{max(floors) * 1e3:.1f}); "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print("batch  " + "  ".join(f"{side} ms/epoch (x floor)" for side in sides) + "  new/old per round")
        for bs in args.batch_sizes:
            cells = []
            for side in sides:
                med = statistics.median(times[bs, side])
                cells.append(f"{med * 1e3:9.1f} ({med / floor:5.2f}x)")
            line = f"{bs:5d}  " + "  ".join(cells)
            if "old" in sides and "new" in sides:
                ratios = [n / o for n, o in zip(times[bs, "new"], times[bs, "old"])]
                line += f"  median {statistics.median(ratios):.2f} [{', '.join(f'{q:.2f}' for q in ratios)}]"
            print(line)
            cpu = "  ".join(
                f"{side} {statistics.median(_CPU_TIMES[side, bs][1:]) * 1e3:.1f}" for side in sides
            )
            print(f"       CPU time of the process, ms/epoch (median): {cpu}")
            if profiles[bs]:
                print(f"       new pass, last round: {_profile_line(profiles[bs][-1])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
