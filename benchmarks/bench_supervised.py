"""Supervised maps (issue 14): accuracy, predict time and layered-fit cost. Not a timed test.

    .venv/bin/python -m benchmarks.bench_supervised [--repeats 5] [--only fashion-mnist] [--grid auto]

Prints a Markdown table per data set (held-out accuracy of KSOMClassifier, of an
unsupervised map labelled by majority vote per unit (the MiniSom recipe), and of
KNeighborsClassifier; predict times) and the fit time of a layered map against an
unlayered one on the same columns (interleaved, medians). Fashion-MNIST (standard
60k/10k split, one map, seed 0) is used when its loader finds it locally
(somvq.datasets), else skipped with a note. ``--grid auto``: every map (the classifier's and
the majority-vote one) takes ``grid="auto"`` (the SOM Toolbox size rule) instead of the
fixed sizes (12x12, 6x6, 20x20).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from somvq import KSOM, KSOMClassifier
from somvq.datasets import DatasetNotFoundError, load_idx_dataset


def majority_vote(som: KSOM, X, y, classes):
    """The MiniSom recipe: each unit's majority training label (unused units: the global majority)."""
    labels = som.predict(X)
    codes = np.searchsorted(classes, y)
    table = np.zeros((som.codebook_.shape[0], classes.size))
    np.add.at(table, (labels, codes), 1)
    default = np.bincount(codes).argmax()
    return np.where(table.sum(1) > 0, table.argmax(1), default)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def _shape(grid):
    return grid if isinstance(grid, str) else f"{grid[0]}x{grid[1]}"


def accuracy_table(name, X, y, grid, repeats, seeds=5):
    results = [one_split(X, y, grid, repeats, seed) for seed in range(seeds)]
    n_test = int(np.ceil(0.3 * len(y)))  # as train_test_split
    print(
        f"\n{name}: {len(y) - n_test} train / {n_test} test rows, map {_shape(grid)}, 20 epochs, "
        f"{seeds} stratified splits (seeds 0..{seeds - 1}; the map's seed = the split's)\n"
    )
    print("| model | held-out accuracy (mean ± sd over splits) | predict time (test set, median) |")
    print("|---|---|---|")
    for i, model in enumerate(r[0] for r in results[0]):
        acc = np.array([r[i][1] for r in results])
        t = np.median([r[i][2] for r in results])
        print(f"| {model} | {acc.mean():.3f} ± {acc.std():.3f} | {t * 1e3:.2f} ms |")


def one_split(X, y, grid, repeats, seed):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    return fit_and_score(Xtr, ytr, Xte, yte, grid, repeats, seed)


def fit_and_score(Xtr, ytr, Xte, yte, grid, repeats, seed):
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    rows = []
    clf = KSOMClassifier(grid=grid, n_epochs=20, random_state=seed).fit(Xtr, ytr)
    pred, t = timed(lambda: clf.predict(Xte), repeats)
    units = f", {clf.som_.grid_.shape[0]}x{clf.som_.grid_.shape[1]}" if isinstance(grid, str) else ""
    rows.append((f"KSOMClassifier (xyf{units})", np.mean(pred == yte), t))
    som = KSOM(grid=grid, n_epochs=20, random_state=seed).fit(Xtr)
    classes = np.unique(ytr)
    unit_label = majority_vote(som, Xtr, ytr, classes)
    pred, t = timed(lambda: classes[unit_label[som.predict(Xte)]], repeats)
    rows.append(("KSOM + majority vote", np.mean(pred == yte), t))
    knn = KNeighborsClassifier(n_neighbors=5).fit(Xtr, ytr)
    pred, t = timed(lambda: knn.predict(Xte), repeats)
    rows.append(("KNeighborsClassifier(5)", np.mean(pred == yte), t))
    return rows


def fashion_table(repeats, grid=(20, 20), n_train=None):
    """Fashion-MNIST on its standard split (train 60,000 / test 10,000), one map (seed 0)."""
    try:
        Xtr, ytr = load_idx_dataset("fashion-mnist", "train")
        Xte, yte = load_idx_dataset("fashion-mnist", "test")
    except DatasetNotFoundError as exc:
        print(f"\nFashion-MNIST: not run ({exc})")
        return
    Xtr, Xte = Xtr.reshape(len(Xtr), -1).astype(float), Xte.reshape(len(Xte), -1).astype(float)
    if n_train is not None and n_train < len(ytr):  # the first n_train rows of the train split
        Xtr, ytr = Xtr[:n_train], ytr[:n_train]
    print(
        f"\nFashion-MNIST: {len(ytr)} train / {len(yte)} test rows (the standard split), 784 pixels "
        f"standardized on the train part, map {_shape(grid)}, 20 epochs, seed 0\n"
    )
    print("| model | held-out accuracy | predict time (test set, median) |")
    print("|---|---|---|")
    for model, acc, t in fit_and_score(Xtr, ytr, Xte, yte, grid, repeats, 0):
        print(f"| {model} | {acc:.3f} | {t * 1e3:.1f} ms |")


def layered_cost(repeats):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Z = np.hstack([X, np.eye(10)[y]])
    plain = dict(grid=(12, 12), n_epochs=10, random_state=0)
    layered = dict(plain, layers=[list(range(64)), list(range(64, 74))], layer_weights=[1.0, 3.0])
    t_plain, t_layer = [], []
    for _ in range(repeats):  # interleaved
        t = time.perf_counter()
        KSOM(**plain).fit(Z)
        t_plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        KSOM(**layered).fit(Z)
        t_layer.append(time.perf_counter() - t)
    a, b = float(np.median(t_plain)), float(np.median(t_layer))
    print(
        f"\nfit on digits, 74 columns (64 + one-hot 10), 12x12, batch, 10 epochs, {repeats} interleaved runs:"
    )
    print(
        f"unlayered {a * 1e3:.1f} ms, layered (2 layers, weights 1 and 3) {b * 1e3:.1f} ms: ratio {b / a:.2f}"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=["digits", "wine", "fashion-mnist", "layered"],
        action="append",
        help="run only these parts (repeatable; default: all)",
    )
    parser.add_argument(
        "--grid",
        choices=["fixed", "auto"],
        default="fixed",
        help='map sizes: the fixed ones (default) or grid="auto" (SOM Toolbox rule) for every map',
    )
    parser.add_argument(
        "--fashion-train",
        type=int,
        default=None,
        help="use the first N rows of Fashion-MNIST's train split (default: all 60,000)",
    )
    args = parser.parse_args()
    parts = args.only or ["digits", "wine", "fashion-mnist", "layered"]
    KSOM(grid=(2, 2), n_epochs=1).fit(np.random.default_rng(0).normal(size=(10, 2)))  # compile
    if "digits" in parts:
        X, y = load_digits(return_X_y=True)
        accuracy_table("digits", X, y, "auto" if args.grid == "auto" else (12, 12), args.repeats)
    if "wine" in parts:
        X, y = load_wine(return_X_y=True)
        accuracy_table("wine", X, y, "auto" if args.grid == "auto" else (6, 6), args.repeats)
    if "fashion-mnist" in parts:
        grid = "auto" if args.grid == "auto" else (20, 20)
        fashion_table(args.repeats, grid=grid, n_train=args.fashion_train)
    if "layered" in parts:
        layered_cost(args.repeats)


if __name__ == "__main__":
    main()
