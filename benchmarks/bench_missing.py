"""Missing values (issue 13): the NaN-aware batch epoch against the dense one, and imputation.

Two parts, printed as Markdown tables (quoted in docs/missing-values.md):

1. **Speed**: one batch-KSOM epoch (``KSOM.partial_fit``, the masked path) on N x D data
   with a fraction of entries set to NaN, against the dense epoch on the same data without
   holes; interleaved repeats, medians and their ratio. The dense epoch of ``missing="ignore"``
   on the complete data is timed too (it must equal the ``missing="error"`` one: no change).
2. **Imputation**: RMSE on the removed entries (MCAR, 10 / 20 / 30 %) of standardized
   real data sets (scikit-learn's digits and wine; Fashion-MNIST when its files are
   present), for ``KSOM(missing="ignore").fit(X).impute(X)`` against
   ``SimpleImputer(strategy="mean")`` and ``KNNImputer`` (quality and time).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_missing.py --rows 100000 --features 32

``--dtype float32`` times the speed part on float32 data (the benchmark table's dtype).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _epoch_time(som_params, X, repeats):
    """Seconds per epoch of ``fit``, from the callback's timestamps (labels and setup excluded)."""
    from somvq import KSOM

    stamps = []
    KSOM(n_epochs=repeats + 1, **som_params).fit(X, callback=lambda *args: stamps.append(time.perf_counter()))
    return list(np.diff(stamps))


def speed(rows, features, fraction, grid, repeats, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(dtype)
    Xn = X.copy()
    Xn[rng.random(X.shape) < fraction] = np.nan
    Xn[np.isnan(Xn).all(axis=1), 0] = 0.0
    params = dict(grid=grid, init="normal", random_state=0, max_missing=1.0)
    # warm-up (compilation, caches)
    _epoch_time({**params, "missing": "ignore"}, Xn[:2000], 1)
    _epoch_time({**params, "missing": "error"}, X[:2000], 1)
    dense, dense_ignore, masked = [], [], []
    for _ in range(repeats):  # interleaved
        dense += _epoch_time({**params, "missing": "error"}, X, 2)
        dense_ignore += _epoch_time({**params, "missing": "ignore"}, X, 2)
        masked += _epoch_time({**params, "missing": "ignore"}, Xn, 2)
    med = {
        name: float(np.median(v))
        for name, v in (
            ("dense", dense),
            ("dense, missing='ignore'", dense_ignore),
            (f"{fraction:.0%} NaN", masked),
        )
    }
    print(
        f"\n### Batch epoch, {rows} x {features} {dtype}, grid {grid}, median of {2 * repeats} epochs, interleaved\n"
    )
    print("| data | epoch (s) | ratio to dense |\n|---|---:|---:|")
    base = med["dense"]
    for name, value in med.items():
        print(f"| {name} | {value:.3f} | {value / base:.2f} |")
    return med


def _datasets(names=("digits", "wine", "fashion-mnist"), fashion_rows=10_000):
    from sklearn.datasets import load_digits, load_wine

    sets = {}
    if "digits" in names:
        sets["digits"] = load_digits().data
    if "wine" in names:
        sets["wine"] = load_wine().data
    if "fashion-mnist" not in names:
        return sets
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from benchmarks.data import fashion_mnist

        n = fashion_rows
        sets[f"fashion-mnist (first {n} rows)"] = fashion_mnist()[:n].reshape(n, -1).astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - files absent: say so
        print(f"\nFashion-MNIST not available here ({type(exc).__name__}: {exc}); skipped.")
    return sets


def imputation(
    fractions, seed=0, grid_rule=None, names=("digits", "wine", "fashion-mnist"), fashion_rows=10_000
):
    from sklearn.impute import KNNImputer, SimpleImputer
    from sklearn.preprocessing import StandardScaler

    from somvq import KSOM

    warm = np.random.default_rng(1).normal(size=(50, 4))
    warm[::3, 1] = np.nan
    KSOM(grid=(3, 3), missing="ignore", n_epochs=1, init="pca").fit(warm).impute(warm)  # compile first
    print("\n### Imputation RMSE on the removed entries (standardized features, MCAR)\n")
    print("| data | removed | KSOM RMSE | KSOM time (s) | mean RMSE | KNN RMSE | KNN time (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, raw in _datasets(names, fashion_rows).items():
        X = StandardScaler().fit_transform(raw)
        X[:, X.std(axis=0) == 0] = 0.0
        n = X.shape[0]
        side = max(2, int(round((5 * np.sqrt(n)) ** 0.5)))  # ~5 sqrt(N) units (Vesanto's rule)
        for fraction in fractions:
            rng = np.random.default_rng(seed)
            holes = rng.random(X.shape) < fraction
            holes[holes.all(axis=1), 0] = False
            Xn = np.where(holes, np.nan, X)
            truth = X[holes]

            def rmse(filled, holes=holes, truth=truth):
                return float(np.sqrt(np.mean((filled[holes] - truth) ** 2)))

            start = time.perf_counter()
            som = KSOM(
                grid=(side, side),
                missing="ignore",
                max_missing=1.0,
                n_epochs=20,
                init="pca",
                radius_final=0.5,
                random_state=0,
            )
            ksom_fill = som.fit(Xn).impute(Xn)
            t_ksom = time.perf_counter() - start
            mean_fill = SimpleImputer(strategy="mean").fit_transform(Xn)
            mean_fill = np.where(np.isnan(Xn), mean_fill if mean_fill.shape == Xn.shape else 0.0, Xn)
            start = time.perf_counter()
            knn_fill = KNNImputer(n_neighbors=5).fit_transform(Xn)
            t_knn = time.perf_counter() - start
            print(
                f"| {name} ({n} x {X.shape[1]}, grid {side}x{side}) | {fraction:.0%} | {rmse(ksom_fill):.3f} | "
                f"{t_ksom:.3f} | {rmse(mean_fill):.3f} | {rmse(knn_fill):.3f} | {t_knn:.3f} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--grid", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dtype", choices=("float64", "float32"), default="float64", help="dtype of the speed part's data"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-imputation", action="store_true")
    parser.add_argument(
        "--data",
        nargs="+",
        choices=("digits", "wine", "fashion-mnist"),
        default=["digits", "wine", "fashion-mnist"],
    )
    parser.add_argument("--fashion-rows", type=int, default=10_000, help="first rows of Fashion-MNIST used")
    args = parser.parse_args(argv)
    if not args.skip_speed:
        speed(args.rows, args.features, args.fraction, tuple(args.grid), args.repeats, dtype=args.dtype)
    if not args.skip_imputation:
        imputation((0.1, 0.2, 0.3), names=args.data, fashion_rows=args.fashion_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
