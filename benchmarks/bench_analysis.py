"""Map analysis benchmarks (issue 15; docs/analysis.md).

1. ``--metrics``: every quality measure of somvq.metrics on a 16x32 map over 1e5 rows
   (synthetic, 64 features), seconds per measure (wall and CPU); ``--sample N``: query
   rows of the two rank measures (default 2000; 100000 = all rows, exact).
2. ``--ari``: adjusted Rand index of the map's clusters (cluster_units + the BMU of each
   row) against the data sets' held-out labels, beside KMeans and AgglomerativeClustering
   on the raw rows, with times. Digits and wine (standardised); Fashion-MNIST when its IDX
   files are installed.
3. ``--defaults``: QE (TE) of the three algorithms with all defaults (the decay="auto" rule).

Run:  python -m benchmarks.bench_analysis --metrics --ari
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def bench_metrics(
    n_rows: int = 100_000, n_features: int = 64, sample: int = 2000
) -> list[tuple[str, float, float]]:
    from somvq import metrics
    from somvq.grids import Grid

    rng = np.random.default_rng(0)
    grid = Grid((16, 32))
    X = rng.normal(size=(n_rows, n_features))
    W = rng.normal(size=(grid.n_units, n_features))
    rows = []
    calls = [
        ("quantization_error", lambda: metrics.quantization_error(X, W)),
        ("topographic_error", lambda: metrics.topographic_error(X, W, grid)),
        ("distortion", lambda: metrics.distortion(X, W, grid, radius=1.0)),
        ("topographic_product", lambda: metrics.topographic_product(None, W, grid)),
        (
            f"trustworthiness (k=5, {sample} query rows)",
            lambda: metrics.trustworthiness(X, W, grid, sample=sample, random_state=0),
        ),
        (
            f"neighbourhood_preservation (k=5, {sample} query rows)",
            lambda: metrics.neighbourhood_preservation(X, W, grid, sample=sample, random_state=0),
        ),
        ("combined_error", lambda: metrics.combined_error(X, W, grid)),
    ]
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    for name, call in calls:
        start, cpu = time.perf_counter(), time.process_time()
        value = call()
        rows.append((name, float(value), time.perf_counter() - start))
        # CPU seconds of all threads: less sensitive than wall time to other jobs' load
        print(
            f"{name:55s} {value:12.5g} {rows[-1][2]:8.2f} s wall {time.process_time() - cpu:8.2f} s cpu",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}", flush=True)
    return rows


DATA_NAMES = ("digits", "wine", "fashion-mnist")


def _datasets(names=DATA_NAMES, rows=10_000):
    """(name, X, y) of the chosen sets; Fashion-MNIST (train + test, 70,000 rows) is cut to a
    random subsample of ``rows`` rows (seed 0) so that Ward on the raw rows fits in memory."""
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    if "digits" in names:
        digits = load_digits()
        yield "digits", digits.data, digits.target
    if "wine" in names:
        wine = load_wine()
        yield "wine (standardised)", StandardScaler().fit_transform(wine.data), wine.target
    if "fashion-mnist" in names:
        try:
            from somvq.datasets import load_dataset

            fm = load_dataset("fashion-mnist", split="all")
        except Exception as exc:  # not installed here
            print(f"fashion-mnist skipped: {type(exc).__name__}: {exc}")
            return
        X, y = fm.X.astype(np.float32), fm.y
        if rows < X.shape[0]:
            keep = np.sort(np.random.default_rng(0).choice(X.shape[0], rows, replace=False))
            X, y = X[keep], y[keep]
        yield f"fashion-mnist ({X.shape[0]} rows)", X, y


def bench_ari(grid=(16, 32), names=DATA_NAMES, rows=10_000) -> None:
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.metrics import adjusted_rand_score

    from somvq import KSOM
    from somvq.analysis import cluster_samples, cluster_units

    for name, X, y in _datasets(names, rows):
        k = len(np.unique(y))
        print(f"\n{name}: {X.shape[0]} rows x {X.shape[1]} features, {k} classes")
        start = time.perf_counter()
        som = KSOM(grid=grid, random_state=0).fit(X)
        t_fit = time.perf_counter() - start
        for method in ("agglomerative", "umatrix", "kmeans"):
            start = time.perf_counter()
            labels = cluster_samples(som, X, cluster_units(som, k, method=method, random_state=0))
            t = time.perf_counter() - start
            print(
                f"  map {grid[0]}x{grid[1]} + {method:13s} ARI {adjusted_rand_score(y, labels):.3f}  time {t_fit:.2f} s fit + {t:.2f} s"
            )
        start = time.perf_counter()
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(X)
        print(
            f"  KMeans raw                    ARI {adjusted_rand_score(y, labels):.3f}  time {time.perf_counter() - start:.2f} s"
        )
        start = time.perf_counter()
        labels = AgglomerativeClustering(k).fit_predict(X)
        print(
            f"  Agglomerative (ward) raw      ARI {adjusted_rand_score(y, labels):.3f}  time {time.perf_counter() - start:.2f} s"
        )


def bench_defaults(names=DATA_NAMES[:2], rows=70_000) -> None:
    """QE (TE) of every algorithm with all defaults (16x32, 10 epochs), and mini-batch with the old decay 0.99."""
    from somvq import KSOM

    for name, X, _ in _datasets(names, rows):
        row = [name]
        for params in (
            dict(algorithm="batch"),
            dict(algorithm="online"),
            dict(algorithm="minibatch"),
            dict(algorithm="minibatch", decay=0.99),
        ):
            som = KSOM(random_state=0, **params).fit(X)
            row.append(f"{som.quantization_error(X):.3f} ({som.topographic_error(X):.3f})")
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", action="store_true")
    parser.add_argument("--ari", action="store_true")
    parser.add_argument("--defaults", action="store_true")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument(
        "--data",
        nargs="+",
        choices=DATA_NAMES,
        default=None,
        help="data sets for --ari and --defaults (default: all three for --ari, digits and wine for --defaults)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="Fashion-MNIST rows, a random subsample (seed 0) of the 70,000 (default: 10000 for --ari, all for --defaults)",
    )
    args = parser.parse_args()
    everything = not (args.metrics or args.ari or args.defaults)
    if args.metrics or everything:
        bench_metrics(sample=args.sample)
    if args.ari or everything:
        bench_ari(names=args.data or DATA_NAMES, rows=args.rows or 10_000)
    if args.defaults or everything:
        bench_defaults(names=args.data or DATA_NAMES[:2], rows=args.rows or 70_000)
