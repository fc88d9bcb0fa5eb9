"""What this machine's arithmetic allows the batch fit (issue 17, round 23).

Not a comparison with peers: the measured ceilings that decide whether the whole-fit target
("batch KSOM, 30 epochs, at most 0.7x of 30 GEMM floors") is within reach of an exact
search at all. Run by hand::

    python -m benchmarks.roofline --rows 1000000

Measured, in one process:

* **the multiply-add peak**: a loop of 12 independent chains of 256-bit float32
  multiply-adds (LLVM IR, as the kernels write theirs), on one thread and on two at once;
* **the 16-bit integer rate** (x86 with AVX2 only): the same loop with ``vpmaddwd`` and an
  add of its 32-bit sums, the form a quantised screening pass would take (16 multiply-adds
  per instruction, twice float32's per vector);
* **the fused search's own kernel** (:func:`somvq._kernels.cpu_fused.lowest_two`, one
  thread, one block of rows in L1/L2) against its multiply-adds at the peak, at the
  target case's shape and at others, and over the target case's rows at twice its
  one-thread rate (the best two threads can do);
* **the GEMM floor** of the target case (``benchmarks._worker.gemm_floor``: the one the
  table divides by) and what it implies: an exact pass must do ``N K D`` multiply-adds,
  so with both threads at the peak it takes at least ``N K D / (2 peak)``. The passes
  that cannot be pruned (the first ~18, round 21) cost at least that each; the figure
  printed last is what each of them would have to cost, everything included, for the
  whole fit to reach the target with the last passes at ``--late`` of the floor.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from somvq._kernels.cpu_lanes import splat

#: Independent accumulator vectors of the peak loops: enough to cover the multiply-add
#: latency (4 cycles) at two per cycle, and within the 16 AVX2 registers.
CHAINS = 12
#: Chains of the 16-bit loop: each is a 1-cycle add of an independent product, so six
#: cover it, and their six distinct multiplicands stay in registers with them.
INT_CHAINS = 6
#: Rows of the target case's block: the dense pass's 4096-row blocks.
TARGET_BLOCK = 4096
#: Loop trips of one peak measurement (~0.1 s a thread).
TRIPS = 20_000_000


@intrinsic
def _fma_chains(typingctx, trips):
    """``CHAINS`` independent chains of 8-lane float32 multiply-adds, ``trips`` deep;
    returns a lane of their sum (so the loop is not removed)."""
    if not isinstance(trips, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        vector = ir.VectorType(f32, 8)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector] * 3), "llvm.fma.v8f32"
        )
        a = splat(builder, vector, ir.Constant(f32, 0.999))
        b = splat(builder, vector, ir.Constant(f32, 1e-3))
        accs = [
            cgutils.alloca_once_value(builder, splat(builder, vector, ir.Constant(f32, float(i))))
            for i in range(CHAINS)
        ]
        with cgutils.for_range(builder, args[0]):
            for acc in accs:
                builder.store(builder.call(fma, [builder.load(acc), a, b]), acc)
        total = builder.load(accs[0])
        for acc in accs[1:]:
            total = builder.fadd(total, builder.load(acc))
        return builder.fpext(builder.extract_element(total, ir.Constant(ir.IntType(32), 0)), ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _madd_chains(typingctx, trips):
    """``INT_CHAINS`` independent chains of ``vpmaddwd`` (16 int16 products summed in pairs
    into 8 int32) added into 32-bit sums, ``trips`` deep; returns a lane of their sum."""
    if not isinstance(trips, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        i16, i32 = ir.IntType(16), ir.IntType(32)
        words, sums = ir.VectorType(i16, 16), ir.VectorType(i32, 8)
        fnty = ir.FunctionType(sums, [words, words])
        madd = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx2.pmadd.wd")
        xs = [splat(builder, words, ir.Constant(i16, 3 + i)) for i in range(INT_CHAINS)]  # one per chain
        accs = [
            cgutils.alloca_once_value(builder, splat(builder, sums, ir.Constant(i32, i)))
            for i in range(INT_CHAINS)
        ]
        with cgutils.for_range(builder, args[0]) as loop:
            y = splat(builder, words, builder.trunc(loop.index, i16))  # varies: not hoisted
            for x, acc in zip(xs, accs):
                builder.store(builder.add(builder.load(acc), builder.call(madd, [x, y])), acc)
        total = builder.load(accs[0])
        for acc in accs[1:]:
            total = builder.add(total, builder.load(acc))
        return builder.sitofp(builder.extract_element(total, ir.Constant(i32, 0)), ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(nogil=True)
def fma_chains(trips):
    return _fma_chains(trips)


@njit(nogil=True)
def madd_chains(trips):
    return _madd_chains(trips)


def has_avx2() -> bool:
    """Whether the 16-bit loop can run here (x86 with AVX2, from /proc/cpuinfo)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


def rate(kernel, per_trip: float, threads: int = 1, repeats: int = 5) -> float:
    """Multiply-adds per second of ``kernel`` (``per_trip`` of them a trip) on ``threads``
    threads at once: the best of ``repeats`` runs."""
    kernel(10)  # compile
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=kernel, args=(TRIPS,)) for _ in range(threads - 1)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        kernel(TRIPS)
        for w in workers:
            w.join()
        best = max(best, threads * TRIPS * per_trip / (time.perf_counter() - start))
    return best


def lowest_two_seconds(rows: int, n_units: int, n_features: int, repeats: int = 50) -> float:
    """Median seconds of :func:`~somvq._kernels.cpu_fused.lowest_two` on one thread over
    ``rows`` float32 rows (whole tiles) and ``n_units`` units."""
    from somvq._kernels.cpu_fused import TILE_ROWS, lowest_two

    @njit(nogil=True)
    def run(tiles, n_tiles, aug, low, second, index):
        lowest_two(tiles, n_tiles, aug, low, second, index)

    rng = np.random.default_rng(0)
    n_tiles = -(-rows // TILE_ROWS)
    tiles = rng.standard_normal(n_tiles * TILE_ROWS * n_features).astype(np.float32)
    aug = rng.standard_normal((n_units, n_features + 1)).astype(np.float32)
    low, second, index = (np.empty(n_tiles * TILE_ROWS, dtype=np.float32) for _ in range(3))
    run(tiles, n_tiles, aug, low, second, index)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(tiles, n_tiles, aug, low, second, index)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the target case (gauss N x 16)")
    parser.add_argument("--units", type=int, default=400, help="units of the target case (20x20)")
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--full-passes", type=int, default=18, help="passes that cannot be pruned (round 21)")
    parser.add_argument(
        "--late", type=float, default=0.49, help="the other passes, as a fraction of the floor"
    )
    parser.add_argument(
        "--target", type=float, default=0.7, help="the whole fit, as a fraction of epochs x floor"
    )
    parser.add_argument(
        "--shapes", nargs="*", default=["512x400x64", "512x100x32"],
        help="rows x units x features of more lowest_two timings (the target's block is always timed)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from benchmarks._worker import gemm_floor
    from benchmarks.data import gaussian_mixture, initial_codebook

    one = rate(fma_chains, CHAINS * 8)
    two = rate(fma_chains, CHAINS * 8, threads=2)
    print(
        f"float32 multiply-adds, 256-bit FMA: {one / 1e9:.1f} G/s on one thread, {two / 1e9:.1f} G/s on two"
    )
    if has_avx2():
        words = rate(madd_chains, INT_CHAINS * 16)
        print(
            f"int16 multiply-adds, vpmaddwd + vpaddd: {words / 1e9:.1f} G/s on one thread "
            f"({words / one:.2f}x float32's)"
        )
    n, k, d = args.rows, args.units, args.features
    per_row = {}
    for shape in [f"{TARGET_BLOCK}x{k}x{d}", *args.shapes]:
        rows, units, features = (int(v) for v in shape.split("x"))
        seconds = lowest_two_seconds(rows, units, features)
        per_row.setdefault((units, features), seconds / rows)
        at_peak = rows * units * features / one
        print(
            f"lowest_two {rows} x {units} x {features}: {seconds * 1e6:.0f} us, "
            f"{seconds / at_peak:.2f}x its multiply-adds at the one-thread peak ({at_peak * 1e6:.0f} us)"
        )
    X = np.ascontiguousarray(gaussian_mixture(n, d), dtype=np.float32)
    W = initial_codebook(X, k)
    floor = gemm_floor(X, W, repeats=5)
    bound = n * k * d / two
    need = (args.target * args.epochs - (args.epochs - args.full_passes) * args.late) / args.full_passes
    print(
        f"GEMM floor {n} x {k} x {d}: {floor * 1e3:.1f} ms ({n * k * d / floor / 1e9:.1f} G multiply-adds/s)"
    )
    print(
        f"an exact pass's multiply-adds at the two-thread peak: {bound * 1e3:.1f} ms = {bound / floor:.2f}x the floor"
    )
    kernel = n * per_row[k, d] / 2  # two threads at best: twice one thread's rate
    print(
        f"lowest_two alone over the {n} rows at twice its one-thread rate: {kernel * 1e3:.1f} ms "
        f"= {kernel / floor:.2f}x the floor"
    )
    print(
        f"for the whole fit at {args.target}x: {args.full_passes} full passes at {need:.2f}x the floor each "
        f"(search, ranking, statistics, smoothing), the other {args.epochs - args.full_passes} at {args.late}x; "
        f"that leaves {need - bound / floor:.2f}x the floor a pass beyond the multiply-adds, "
        f"{need - kernel / floor:.2f}x beyond lowest_two"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
