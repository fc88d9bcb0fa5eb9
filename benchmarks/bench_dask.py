"""Scale figure of DaskKSOM on a LocalCluster: time per epoch and peak memory per worker.

The data are generated lazily by chunks (``dask.array.random``), so no process ever holds
more than a few chunks; each epoch regenerates them (as re-reading from storage would).
A "generate only" pass is timed first, to separate the cost of making the data from the
cost of training on it; ``--persist`` instead keeps the chunks in the workers' memory, so
epochs time the training alone. Optionally (``--in-memory``) the same epoch of the in-memory KSOM
on the computed array gives the overhead ratio.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_dask.py --rows 10000000 --features 16 --in-memory

Figures from this script are quoted in docs/distributed.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--grid", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--algorithm", choices=["batch", "minibatch"], default="batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--persist", action="store_true", help="hold the chunks in the workers' memory")
    parser.add_argument("--in-memory", action="store_true", help="also time KSOM on the computed array")
    args = parser.parse_args(argv)

    # One BLAS thread per dask thread in the workers (the client keeps its defaults, for
    # the in-memory comparison).
    blas_variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    worker_env = {name: str(args.threads_per_worker) for name in blas_variables}
    worker_env["OMP_WAIT_POLICY"] = "PASSIVE"

    import dask.array as da
    import numpy as np
    from dask.distributed import Client, LocalCluster, wait

    from somvq.integrations.dask import DaskKSOM

    shape = (args.rows, args.features)
    chunks = (args.chunk_rows, args.features)
    X = da.random.default_rng(0).standard_normal(shape, chunks=chunks, dtype=np.float32)
    n_units = int(np.prod(args.grid))
    print(
        f"data {args.rows:,} x {args.features} float32 ({X.nbytes / 2**30:.2f} GiB, "
        f"{X.numblocks[0]} chunks of {args.chunk_rows:,} rows), grid {tuple(args.grid)} (K={n_units}), "
        f"{args.algorithm}, {args.workers} workers x {args.threads_per_worker} thread(s), "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    )
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            env=worker_env,
        ) as cluster,
        Client(cluster) as client,
    ):
        # Warm up: import somvq and load the compiled kernels on every worker.
        small = da.random.default_rng(1).standard_normal((4000, args.features), chunks=1000, dtype=np.float32)
        DaskKSOM(grid=tuple(args.grid), n_epochs=1, random_state=0).fit(small)
        baseline = client.run(_current_rss_mib)

        start = time.perf_counter()
        if args.persist:
            X = X.persist()
            wait(X)
        else:
            X.sum(axis=0).compute()
        generate = time.perf_counter() - start

        epoch_ends = []
        som = DaskKSOM(
            grid=tuple(args.grid),
            algorithm=args.algorithm,
            n_epochs=args.epochs,
            init="normal",
            random_state=0,
            shuffle_chunks=True,
        )
        start = time.perf_counter()
        som.fit(X, callback=lambda *_: epoch_ends.append(time.perf_counter()))
        epochs = np.diff([start, *epoch_ends])
        peaks = client.run(_peak_rss_mib)
        qe = som.quantization_error(X)
        steps_per_epoch = som.n_steps_ // args.epochs

        what = "generate and persist" if args.persist else "generate only"
        print(f"{what} (one pass, no training): {generate:.2f} s")
        print(
            "epoch times (s): "
            + ", ".join(f"{t:.2f}" for t in epochs)
            + f"; median {np.median(epochs):.2f} s, {args.rows / np.median(epochs) / 1e6:.2f} M rows/s, "
            f"{steps_per_epoch} update(s) per epoch"
        )
        for address in sorted(peaks):
            print(
                f"worker {address}: peak RSS {peaks[address]:.0f} MiB "
                f"(after warm-up {baseline.get(address, float('nan')):.0f} MiB)"
            )
        print(f"client: peak RSS {_peak_rss_mib():.0f} MiB; quantization error {qe:.4f}")
        print(
            f"per step and chunk: {n_units + n_units * args.features} float64 statistics back "
            f"({(n_units + n_units * args.features) * 8 / 1024:.0f} KiB); codebook out "
            f"{n_units * args.features * 4 / 1024:.0f} KiB"
        )

        if args.in_memory:
            from somvq import KSOM

            Xm = X.compute()
            memory = KSOM(
                grid=tuple(args.grid),
                algorithm=args.algorithm,
                n_epochs=2,
                batch_size=args.chunk_rows,
                init="normal",
                random_state=0,
            )
            ends = []
            start = time.perf_counter()
            memory.fit(Xm, callback=lambda *_: ends.append(time.perf_counter()))
            epoch = ends[1] - ends[0]
            print(f"in-memory KSOM in the client process (default threads), epoch 2: {epoch:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
