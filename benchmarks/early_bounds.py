"""How many units a subspace lower bound leaves per row, epoch by epoch (issue 17, round 21).

Not a timing: a count that decides whether a search is worth building. Run by hand::

    python -m benchmarks.early_bounds --rows 1000000 --sample 20000

Batch KSOM (gaussian, radius max(shape) / 2, the table's start ``W0``) is fitted on the
issue's target case; the codebook that each epoch searches is kept from ``fit``'s callback.
For each of them and each ``m`` of ``--dims``, the codebook is split into its mean ``c``,
its top-``m`` principal directions ``U`` and the rest. With ``p_j = U^T (w_j - c)``,
``r_j = ||(w_j - c) - U p_j||``, ``q = U^T (x - c)`` and ``s = ||(x - c) - U q||``, every
squared distance lies in ``[||q - p_j||^2 + (s - r_j)^2, ||q - p_j||^2 + (s + r_j)^2]``; a
unit is a *candidate* of a row when its lower bound is at most the least upper bound of
the row. Only candidates would need the exact product. Printed: the codebook's leading
singular values (over sqrt(K)) and the mean number of candidates per row, in float64 on
``--sample`` rows of the data.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.data import gaussian_mixture, initial_codebook


def searched_codebooks(X: np.ndarray, W0: np.ndarray, shape: tuple[int, int], epochs: int):
    """The codebook each epoch of a batch KSOM fit searches (``W0`` first)."""
    from somvq import KSOM

    after: list[np.ndarray] = []
    est = KSOM(
        grid=shape,
        n_epochs=epochs,
        init=W0,
        random_state=0,
        algorithm="batch",
        neighbourhood="gaussian",
        radius=max(shape) / 2,
    )
    est.fit(X, callback=lambda epoch, n_epochs, mse, codebook: after.append(codebook.copy()))
    return [W0, *after[:-1]]


def candidates(X: np.ndarray, W: np.ndarray, m: int) -> np.ndarray:
    """(rows, units) mask: the units whose subspace lower bound (top-``m`` directions of
    ``W``) does not exceed the row's least upper bound. Float64."""
    c = W.mean(axis=0)
    Wc, Xc = W - c, X - c
    U = np.linalg.svd(Wc, full_matrices=False)[2][:m].T
    p, q = Wc @ U, Xc @ U
    r = np.sqrt(np.maximum((Wc**2).sum(1) - (p**2).sum(1), 0.0))
    s = np.sqrt(np.maximum((Xc**2).sum(1) - (q**2).sum(1), 0.0))
    inside = ((q[:, None, :] - p[None]) ** 2).sum(-1)
    lower = inside + (s[:, None] - r[None]) ** 2
    upper = inside + (s[:, None] + r[None]) ** 2
    return lower <= upper.min(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--map", default="20x20")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sample", type=int, default=20_000, help="rows counted")
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    args = parser.parse_args(argv)

    shape = tuple(int(v) for v in args.map.split("x"))
    X = gaussian_mixture(args.rows, args.features)
    W0 = initial_codebook(X, shape[0] * shape[1])
    books = searched_codebooks(X, W0, shape, args.epochs)
    sample = X[: args.sample].astype(np.float64)
    print("epoch  singular values / sqrt(K)       " + "  ".join(f"m={m:<4}" for m in args.dims))
    for epoch, W in enumerate(books, 1):
        W = W.astype(np.float64)
        sv = np.linalg.svd(W - W.mean(axis=0), compute_uv=False)[:4] / np.sqrt(len(W))
        counts = "  ".join(f"{candidates(sample, W, m).sum(1).mean():6.1f}" for m in args.dims)
        print(f"{epoch:5d}  {np.array2string(sv, precision=2):30s}  {counts}", flush=True)


if __name__ == "__main__":
    main()
