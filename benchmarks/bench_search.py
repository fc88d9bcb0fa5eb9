"""One block of the exact BMU search, part by part: its GEMM, its ranking, the whole block call.

The search of every CPU path (batch, k-means, mini-batch) is, per block of rows, one
``[x' | 1] . [-2 W' | ||w'||^2]^T`` product and :func:`somvq._kernels.cpu_bmu.rank_block`
(:func:`somvq._kernels.cpu_bmu.search_block` does both, for the whole block).
This times, on one thread with the BLAS held at one thread (as the search runs it), the
product alone (``np.dot`` inside Numba, SciPy's BLAS, and NumPy's ``matmul``), the ranking
alone (with ``--old-rev``, also that revision's ``rank_block`` on the same scores), and
``search_block`` in its GEMM form and in its fused form (:mod:`somvq._kernels.cpu_fused`,
used up to 128 features, and for float64 up to 2048 with 256 units or more:
``cpu_fused.applies``; elsewhere both columns time the GEMM form), per block of
``--rows`` rows, for each ``D x K`` case; the medians of ``--repeats`` calls. The ranking's
cost against the product's is what decides how far above the GEMM floor the GEMM form
sits; the fused form writes no scores.

Example::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_search \\
        --cases 32x512 16x400 64x100 784x512 32x4096
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _median_us(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e6


def _case(n_features: int, n_units: int, rows: int, repeats: int, dtype, old_rank=None) -> str:
    from numba import njit

    from somvq._kernels import cpu_minibatch_step as step
    from somvq._kernels.cpu_bmu import RADIUS, _constants, prepare_frame, rank_block, search_block

    @njit(nogil=True)
    def numba_dot(a, b, out):  # the product as search_block makes it
        np.dot(a, b.T, out)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, n_features)).astype(dtype)
    W = rng.normal(size=(n_units, n_features)).astype(dtype)
    mean, centre = np.empty(n_features), np.zeros(n_features, dtype=dtype)
    aug, frame = np.empty((n_units, n_features + 1), dtype=dtype), np.zeros(4)
    prepare_frame(W, mean, centre, aug, 2.0**30, frame)
    framed, scratch = step._scratch(rows, n_units, n_features, dtype)
    products = scratch[:rows]  # (the fused form's scratch may need more rows)
    framed[:, :n_features] = X
    bmu, sq = np.empty(rows, dtype=np.int64), np.empty(rows)
    c = _constants(np.dtype(dtype), n_features)
    radius = frame[RADIUS]
    numba_dot(framed, aug, products)  # compiled before the BLAS is held (it loads SciPy's)
    gemm = _median_us(lambda: numba_dot(framed, aug, products), repeats)
    numpy_gemm = _median_us(lambda: np.matmul(framed, aug.T, out=products), repeats)
    rank = _median_us(
        lambda: rank_block(X, framed, products, bmu, W, c.kappa, radius, c.overflow, 1.0, c.up, sq, True),
        repeats,
    )
    old = ""
    if old_rank is not None:  # an earlier revision's ranking of the same block (maybe with the bits)
        head = old_rank.py_func.__code__.co_varnames[:4]
        extra = (products.view(np.int32 if products.itemsize == 4 else np.int64),) if "bits" in head else ()
        old_args = (X, framed, products, *extra, bmu, W, c.kappa, radius, c.overflow, 1.0, c.up, sq, True)
        old = f" {_median_us(lambda: old_rank(*old_args), repeats):8.0f}"

    def search(lanes):  # the GEMM form (False), or the fused one (cpu_fused) where it applies
        return search_block(
            X, 0, rows, framed, scratch, W, aug, centre, frame, c.kappa, c.overflow, c.up, bmu, sq, lanes
        )

    block = _median_us(lambda: search(False), repeats)
    fused = _median_us(lambda: search(True), repeats)
    flops = 2.0 * rows * n_units * (n_features + 1)
    return (
        f"{n_features:5d} {n_units:6d} {rows:5d}  {gemm:9.0f} {numpy_gemm:9.0f} {rank:8.0f}{old} "
        f"{block:9.0f} {fused:9.0f}   {rank / gemm:10.2f} {block / gemm:9.2f} {fused / gemm:9.2f}   "
        f"{flops / gemm / 1e3:6.1f}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["32x512", "16x400", "64x100", "784x512", "32x4096"])
    parser.add_argument("--rows", type=int, default=512, help="rows per block (the search's CHUNK_ROWS)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--old-rev", help="also time this git revision's rank_block (benchmarks._revision)")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_info, threadpool_limits

    import somvq._kernels.cpu_minibatch_step  # noqa: F401  (loads SciPy's BLAS before the limit)

    dtype = np.dtype(args.dtype).type
    blas = ", ".join(
        f"{i['filepath'].rsplit('/', 1)[-1]} ({i.get('architecture')})" for i in threadpool_info()
    )
    print(f"{args.dtype}, one thread, BLAS held at one thread: {blas}; medians of {args.repeats} calls")
    old_rank = None
    if args.old_rev:
        from benchmarks._revision import load_kernels

        old_rank = load_kernels(args.old_rev, ["cpu_bmu"])["cpu_bmu"].rank_block
    old_column = f" {args.old_rev[:7]:>8s}" if args.old_rev else ""
    print(
        f"    D      K  rows   GEMM us  numpy us  rank us{old_column}  block us  fused us   rank/GEMM "
        "block/GEMM fused/GEMM  GFLOP/s"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        for case in args.cases:
            n_features, n_units = (int(v) for v in case.split("x"))
            print(_case(n_features, n_units, args.rows, args.repeats, dtype, old_rank), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
