"""Pruned vs full BMU search (issue 17): k-means against scikit-learn, batch KSOM against the floor.

Not a timed test: run by hand, e.g. ::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \\
        python -m benchmarks.bench_pruned --rows 1000000 --rounds 3

One process, rounds interleaved (the order rotated every round), medians reported.

* k-means: ``KSOM(neighbourhood="none", n_epochs=30, init=W0)`` with ``bmu_search="full"``
  ``"pruned"`` and ``"auto"`` against ``KMeans(n_clusters=K, init=W0, n_init=1, max_iter=30, tol=0,
  algorithm="lloyd" / "elkan")`` on a float32 Gaussian mixture (``benchmarks.data``),
  20x20 units, the same start ``W0`` (K rows of X). somvq's fit includes its final
  ``labels_`` pass (31 searches); QE (mean squared distance to the final codebook, float64)
  of every result.
* batch KSOM (gaussian neighbourhood), same data and map, 30 epochs: per-epoch time from
  the callback's timestamps; the median of the last third of the epochs and the whole fit
  against the GEMM floor (fastest float32 ``X @ W.T``, whole or in 4096-row blocks,
  timed in the same rounds: ``benchmarks._worker.gemm_floor``).

``--small`` (issue 17, item 3): neighbourhood "none" against ``KMeans(algorithm="lloyd",
n_init=1, init=W0, max_iter=epochs, tol=0)`` and batch KSOM (gaussian) against the floor,
at every size from digits to 1e6 rows (``--sizes``), each size's cases interleaved in one
process, medians of ``--rounds`` (default 5)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE \
        python -m benchmarks.bench_pruned --small --rounds 5

``--old-rev REV`` adds ``kmeans-pruned@REV``: the pruned k-means fit with the kernels of
``somvq/_kernels/cpu_scores.py``, ``cpu_bmu.py`` and ``cpu_pruned.py`` as they were at
``REV`` (loaded from git into this process by :mod:`benchmarks._revision`; everything else
is this checkout's), interleaved with the others, its labels and codebook compared with
this checkout's bit for bit. An A/B of a change to the pruned search in one process::

    python -m benchmarks.bench_pruned --rounds 5 --kmeans-only --no-elkan --old-rev HEAD~1

With ``--small``, ``--old-rev REV`` instead adds ``none@REV`` and ``batch@REV``: the same
fits with the dense search (``cpu_bmu.best_matching_units``, with ``cpu_scores``) as it was
at ``REV``, interleaved, their codebooks compared with this checkout's bit for bit, and the
median of the rounds' time ratios (this checkout / REV)::

    python -m benchmarks.bench_pruned --small --rounds 15 --sizes digits gauss-100000-32 --old-rev HEAD~1

``--searched`` prints, per k-means pass, the fraction of rows the product still searches
and the fraction settled by the direct re-check of the failed groups.

``--passes`` (round 16): whole k-means fits, ``bmu_search="pruned"`` over ``"full"``, for
each data set of ``--sizes`` (``gauss-N-D`` with the map ``--map``, ``fashion`` / ``digits``
with ``--small-map``) and each number of passes of ``--pass-counts``: where pruning starts
to pay, the basis of ``parameters.pruned_min_passes``; codebooks compared bit for bit::

    python -m benchmarks.bench_pruned --passes --sizes gauss-100000-32 fashion --rounds 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--map", default="20x20")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-elkan", action="store_true", help="skip KMeans(algorithm='elkan') (slow)")
    parser.add_argument("--kmeans-only", action="store_true", help="skip the batch KSOM cases")
    parser.add_argument(
        "--small",
        action="store_true",
        help='item 3: "none" against Lloyd and batch against the floor from digits to 1e6 rows',
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["digits", "fashion-5000", "gauss-10000-16", "gauss-100000-32", "gauss-1000000-16"],
        help="--small: data sets (digits, fashion-N: Fashion-MNIST's first N rows, or random "
        "N x 784 when it is not installed, gauss-N-D)",
    )
    parser.add_argument(
        "--replay",
        nargs="+",
        metavar="GROUPS:RECHECK[:BALL]",
        help="replay the codebooks of a full fit (--neighbourhood) through the pruned search with "
        "these settings (e.g. 1:0 40:0.25; 1:0:0 turns the ball test off, 1:0:0.125 is its "
        "default); per-pass process CPU time against the full search",
    )
    parser.add_argument("--neighbourhood", default="none", help="--replay: the fit's neighbourhood")
    parser.add_argument("--small-map", default="16x32", help="--small: the map")
    parser.add_argument("--small-epochs", type=int, default=10, help="--small: epochs / iterations")
    parser.add_argument(
        "--old-rev",
        metavar="REV",
        help="also time the pruned k-means fit with the pruned-search kernels of this git revision "
        "(with --small: the 'none' and batch fits with its dense search)",
    )
    parser.add_argument(
        "--passes",
        action="store_true",
        help="only time k-means fits pruned / full by number of passes (--sizes, --pass-counts)",
    )
    parser.add_argument("--pass-counts", nargs="+", type=int, default=[3, 5, 8, 12, 20])
    parser.add_argument(
        "--searched",
        action="store_true",
        help="only print the fraction of rows the pruned search still searches, per k-means pass",
    )
    args = parser.parse_args(argv)
    if args.passes:
        return passes_break_even(args)
    if args.searched:
        return searched_fractions(args)
    if args.small:
        return small(args)
    if args.replay:
        return replay(args)

    from sklearn.cluster import KMeans

    from benchmarks._worker import gemm_floor
    from benchmarks.data import gaussian_mixture, initial_codebook
    from somvq import KSOM, algorithms

    n = int(args.rows)
    shape = tuple(int(v) for v in args.map.split("x"))
    k = int(np.prod(shape))
    X = gaussian_mixture(n, args.features)
    W0 = initial_codebook(X, k)
    epochs = args.epochs

    def qe(centres):
        return float(algorithms.assign(X, np.ascontiguousarray(centres, dtype=np.float32))[1].mean())

    results: dict[str, list[float]] = {}
    extra: dict[str, object] = {}

    def somvq_kmeans(mode, key=None):
        def run():
            model = KSOM(
                shape, neighbourhood="none", n_epochs=epochs, init=W0, bmu_search=mode, random_state=0
            )
            t = time.perf_counter()
            model.fit(X)
            elapsed = time.perf_counter() - t
            extra[key or f"kmeans-{mode}"] = model
            return elapsed

        return run

    def with_kernels(old, run):
        """``run`` with the pruned search of ``old`` (load_kernels' modules) swapped in."""
        from somvq._kernels import cpu_pruned

        names = ("pruned_search", "Bounds")  # what the CPU engine reads from the module

        def swapped():
            mine = {name: getattr(cpu_pruned, name) for name in names}
            for name in names:
                setattr(cpu_pruned, name, getattr(old["cpu_pruned"], name))
            try:
                return run()
            finally:
                for name, value in mine.items():
                    setattr(cpu_pruned, name, value)

        return swapped

    def sklearn_kmeans(algorithm):
        def run():
            model = KMeans(k, init=W0, n_init=1, max_iter=epochs, tol=0.0, algorithm=algorithm)
            t = time.perf_counter()
            model.fit(X)
            elapsed = time.perf_counter() - t
            extra[f"sklearn-{algorithm}"] = model
            return elapsed

        return run

    def somvq_batch(mode):
        def run():
            stamps = []
            model = KSOM(
                shape, neighbourhood="gaussian", n_epochs=epochs, init=W0, bmu_search=mode, random_state=0
            )
            t = time.perf_counter()
            model.fit(X, callback=lambda *a: stamps.append(time.perf_counter()))
            elapsed = time.perf_counter() - t
            per_epoch = np.diff([t, *stamps])
            results.setdefault(f"batch-{mode} last third/epoch", []).append(
                float(np.median(per_epoch[-(epochs // 3) :]))
            )
            results.setdefault(f"batch-{mode} first epoch", []).append(float(per_epoch[0]))
            extra[f"batch-{mode}"] = model
            return elapsed

        return run

    def floor():
        return gemm_floor(X, W0, repeats=3)

    cases = {
        "kmeans-full": somvq_kmeans("full"),
        "kmeans-pruned": somvq_kmeans("pruned"),
        "kmeans-auto": somvq_kmeans("auto"),
        "sklearn-lloyd": sklearn_kmeans("lloyd"),
        "batch-full": somvq_batch("full"),
        "batch-pruned": somvq_batch("pruned"),
        "batch-auto": somvq_batch("auto"),
        "gemm-floor": floor,
    }
    if not args.no_elkan:
        cases["sklearn-elkan"] = sklearn_kmeans("elkan")
    old_name = None
    if args.old_rev:
        from benchmarks._revision import load_kernels

        old_name = f"kmeans-pruned@{args.old_rev}"
        old = load_kernels(args.old_rev, ["cpu_scores", "cpu_bmu", "cpu_pruned"])
        cases[old_name] = with_kernels(old, somvq_kmeans("pruned", old_name))
    if args.kmeans_only:
        for mode in ("full", "pruned", "auto"):
            del cases[f"batch-{mode}"]
    names = list(cases)
    # warm-up (compilation caches, thread pools) on a small slice
    KSOM(shape, neighbourhood="none", n_epochs=2, init=W0, bmu_search="pruned").fit(X[: 4 * k])
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results.setdefault(name, []).append(cases[name]())
        print(f"round {r + 1}: " + ", ".join(f"{k}={results[k][-1]:.3f}s" for k in names), flush=True)

    med = {name: float(np.median(v)) for name, v in results.items()}
    fl = med["gemm-floor"]
    print(
        f"\nX: gaussian mixture {n} x {args.features} float32, map {args.map} (K = {k}), {epochs} epochs, "
        f"{args.rounds} interleaved rounds, medians; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"GEMM floor {fl * 1e3:.1f} ms")
    lloyd = med["sklearn-lloyd"]
    for name in ["kmeans-full", "kmeans-pruned", old_name, "kmeans-auto", "sklearn-lloyd", "sklearn-elkan"]:
        if name in med:
            model = extra[name]
            centres = model.codebook_ if hasattr(model, "codebook_") else model.cluster_centers_
            print(
                f"{name:15s} {med[name]:8.3f} s  x Lloyd {med[name] / lloyd:5.2f}  QE {qe(centres):.6f}"
                + (f"  n_iter {model.n_iter_}" if hasattr(model, "n_iter_") else "")
            )
    for name in ("kmeans-pruned", "kmeans-auto"):
        if name in extra:
            same = np.array_equal(extra["kmeans-full"].labels_, extra[name].labels_) and (
                extra["kmeans-full"].codebook_.tobytes() == extra[name].codebook_.tobytes()
            )
            print(f"k-means {name[7:]} == full (labels, codebook bits): {same}")
    if old_name:
        ratios = np.array(results["kmeans-pruned"]) / np.array(results[old_name])
        same = np.array_equal(extra["kmeans-pruned"].labels_, extra[old_name].labels_) and (
            extra["kmeans-pruned"].codebook_.tobytes() == extra[old_name].codebook_.tobytes()
        )
        print(
            f"kmeans-pruned / {old_name} per round: median {np.median(ratios):.3f} "
            f"(range {ratios.min():.3f}-{ratios.max():.3f}); same labels and codebook bits: {same}"
        )
    if args.kmeans_only:
        return
    for mode in ("full", "pruned", "auto"):
        last = med[f"batch-{mode} last third/epoch"]
        print(
            f"batch-{mode:6s} fit {med[f'batch-{mode}']:7.3f} s = {med[f'batch-{mode}'] / (epochs * fl):5.2f} x "
            f"({epochs} x floor); last third {last * 1e3:7.1f} ms/epoch = {last / fl:5.2f} x floor; "
            f"first epoch {med[f'batch-{mode} first epoch'] * 1e3:7.1f} ms"
        )
    same = all(
        extra["batch-full"].codebook_.tobytes() == extra[f"batch-{m}"].codebook_.tobytes()
        for m in ("pruned", "auto")
    )
    print(f"batch pruned, auto == full (codebook bits): {same}")


def passes_break_even(args):
    """Whole k-means fits pruned / full by number of passes: one process, the two
    alternated (order swapped every round), medians of ``--rounds``, bits compared."""
    import hashlib

    from benchmarks.data import initial_codebook, load
    from somvq import KSOM
    from somvq.parameters import pruned_min_passes

    for name in args.sizes:
        X = np.ascontiguousarray(load(name), dtype=np.float32)
        text = args.map if name.startswith("gauss") else args.small_map
        shape = tuple(int(v) for v in text.split("x"))
        W0 = initial_codebook(X, int(np.prod(shape)))
        KSOM(shape, neighbourhood="none", n_epochs=2, init=W0, bmu_search="pruned").fit(X[:30000])  # warm-up
        rule = pruned_min_passes(*X.shape)
        print(f"{name} {X.shape[0]} x {X.shape[1]}, map {text}: auto prunes from {rule} passes")
        for passes in args.pass_counts:
            times: dict[str, list[float]] = {"full": [], "pruned": []}
            bits = {}
            for r in range(args.rounds):
                for mode in ("full", "pruned") if r % 2 == 0 else ("pruned", "full"):
                    start = time.perf_counter()
                    som = KSOM(shape, neighbourhood="none", n_epochs=passes, init=W0, bmu_search=mode).fit(X)
                    times[mode].append(time.perf_counter() - start)
                    bits[mode] = hashlib.sha1(som.codebook_.tobytes()).hexdigest()
            full, pruned = np.median(times["full"]), np.median(times["pruned"])
            rounds = " ".join(f"{p / f:.2f}" for p, f in zip(times["pruned"], times["full"]))
            print(
                f"  {passes:3d} passes: full {full:.3f} s, pruned {pruned:.3f} s, pruned / full "
                f"{pruned / full:.2f} (rounds: {rounds}); same bits {bits['full'] == bits['pruned']}"
            )


def searched_fractions(args):
    """Fraction of the rows searched by the product in each pass of a k-means fit."""
    from benchmarks.data import gaussian_mixture, initial_codebook
    from somvq import KSOM
    from somvq._kernels import cpu_pruned

    X = gaussian_mixture(int(args.rows), args.features)
    shape = tuple(int(v) for v in args.map.split("x"))
    W0 = initial_codebook(X, int(np.prod(shape)))
    codebooks = [W0]
    KSOM(shape, neighbourhood="none", n_epochs=args.epochs, init=W0).fit(
        X, callback=lambda e, n, mse, cb: codebooks.append(cb.copy())
    )
    bounds = cpu_pruned.Bounds(len(X))
    fractions = []
    for W in codebooks[:-1]:
        cpu_pruned.pruned_search(X, W, bounds)
        fractions.append((bounds.searched / len(X), bounds.rechecked / len(X)))
    groups = bounds.starts.shape[0] - 1
    print(
        args.map,
        f"({groups} groups) product-searched fraction by pass:",
        " ".join(f"{v:.2f}" for v, _ in fractions),
    )
    print(
        args.map,
        f"({groups} groups) re-checked fraction by pass:     ",
        " ".join(f"{v:.2f}" for _, v in fractions),
    )


def replay(args):
    """Codebooks of one full fit, searched again by the full and the pruned search with each
    setting, ``--rounds`` times alternated; process CPU time (both use the same two threads,
    and CPU time is less sensitive than wall time to other jobs on the machine)."""
    from benchmarks.data import gaussian_mixture, initial_codebook
    from somvq import KSOM
    from somvq._kernels import cpu_bmu, cpu_pruned

    n = int(args.rows)
    shape = tuple(int(v) for v in args.map.split("x"))
    k = int(np.prod(shape))
    X = gaussian_mixture(n, args.features)
    W0 = initial_codebook(X, k)
    codebooks = [W0]
    KSOM(shape, neighbourhood=args.neighbourhood, n_epochs=args.epochs, init=W0, bmu_search="full").fit(
        X, callback=lambda e, n_, mse, cb: codebooks.append(cb.copy())
    )
    codebooks = codebooks[:-1]
    settings = {"full": None}
    for text in args.replay:
        groups, recheck, *ball = text.split(":")
        settings[text] = (int(groups), float(recheck), float(ball[0]) if ball else None)

    def run(setting):
        times, fractions = [], []
        bounds = None if setting is None else cpu_pruned.Bounds(n, *setting)
        bmu, sq = np.empty(n, np.int64), np.empty(n)
        for W in codebooks:
            counts, sums = np.zeros(k), np.zeros((k, X.shape[1]))
            t = time.process_time()
            if bounds is None:
                cpu_bmu.best_matching_units(X, W, None, bmu, sq, counts=counts, sums=sums)
            else:
                cpu_pruned.pruned_search(X, W, bounds, counts=counts, sums=sums)
                fractions.append((bounds.searched / n, bounds.rechecked / n, bounds.screened / n))
            times.append(time.process_time() - t)
        return times, fractions

    results: dict[str, list] = {}
    print(
        f"replay: gauss {n} x {args.features}, map {args.map}, neighbourhood {args.neighbourhood!r}, "
        f"{len(codebooks)} passes, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}"
    )
    for r in range(args.rounds):
        for name, setting in settings.items():
            times, fractions = run(setting)
            results.setdefault(name, []).append(times)
            if r == 0 and fractions:
                groups = cpu_pruned.Bounds(n, *setting)
                groups.for_units(W0)
                print(
                    f"{name} ({groups.starts.shape[0] - 1} groups): product-searched / re-checked / "
                    "of them settled by the ball's screen alone, every 3rd pass:"
                )
                for column in range(3):
                    print("   ", " ".join(f"{f[column]:.2f}" for f in fractions[::3]))
    full = np.median(np.array(results["full"]), axis=0)
    third = max(len(codebooks) // 3, 1)
    for name, runs in results.items():
        med = np.median(np.array(runs), axis=0)
        print(
            f"{name:10s} all passes {med.sum():.3f} s CPU = {med.sum() / full.sum():.2f}x full; "
            f"last third {np.median(med[-third:]) * 1e3:.1f} ms a pass = "
            f"{np.median(med[-third:]) / np.median(full[-third:]):.2f}x; first pass {med[0] * 1e3:.0f} ms"
        )


#: Pause before each timed case of ``--small`` (see :func:`_small_size`).
SETTLE_S = 0.3


def _small_data(name: str) -> tuple[str, np.ndarray]:
    from benchmarks import data

    if name.startswith("fashion-"):
        rows = int(float(name.split("-")[1]))
        try:
            return f"Fashion-MNIST first {rows} x 784", np.ascontiguousarray(data.fashion_mnist()[:rows])
        except FileNotFoundError:
            rng = np.random.default_rng(0)
            return f"random uniform {rows} x 784 (Fashion-MNIST not installed)", rng.random(
                (rows, 784), dtype=np.float32
            )
    X = data.load(name)
    return f"{name} {X.shape[0]} x {X.shape[1]}", X


def small(args):
    """Item 3: "none" against scikit-learn's Lloyd, batch against the floor, at each size."""
    shape = tuple(int(v) for v in args.small_map.split("x"))
    k = int(np.prod(shape))
    epochs = args.small_epochs
    print(
        f"map {args.small_map} (K = {k}), {epochs} epochs / max_iter, {args.rounds} interleaved rounds, "
        f"medians; load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    header = (
        f"{'data':44s} {'none ms':>8s} {'Lloyd ms':>8s} {'none/Lloyd':>10s} {'Lloyd iter':>10s} "
        f"{'none xfloor/ep':>14s} {'batch ms':>9s} {'batch x(ep floor)':>17s} {'floor ms':>8s} {'QE none/Lloyd':>13s}"
    )
    old_search = None
    if args.old_rev:
        from benchmarks._revision import load_kernels

        old_search = load_kernels(args.old_rev, ["cpu_scores", "cpu_bmu"])["cpu_bmu"].best_matching_units
        header += f" {'none/@REV':>9s} {'batch/@REV':>10s} {'same bits':>9s}"
    print(header)
    for name in args.sizes:
        label, X = _small_data(name)
        _small_size(label, X, shape, epochs, args.rounds, old_search)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def _small_size(label, X, shape, epochs, rounds, old_search=None):
    """One line of ``--small``: the cases on ``X``, interleaved, medians; with
    ``old_search`` (another revision's ``best_matching_units``) also the "none" and batch
    fits through it."""
    from sklearn.cluster import KMeans

    from benchmarks._worker import gemm_floor
    from benchmarks.data import initial_codebook
    from somvq import KSOM

    k = int(np.prod(shape))
    W0 = initial_codebook(X, k)
    out: dict[str, object] = {}

    def none(key="none"):
        model = KSOM(shape, neighbourhood="none", n_epochs=epochs, init=W0, random_state=0)
        t = time.perf_counter()
        model.fit(X)
        out[key] = model
        return time.perf_counter() - t

    def lloyd():
        model = KMeans(k, init=W0, n_init=1, max_iter=epochs, tol=0.0, algorithm="lloyd")
        t = time.perf_counter()
        model.fit(X)
        out["lloyd"] = model
        return time.perf_counter() - t

    def batch(key="batch"):
        model = KSOM(shape, neighbourhood="gaussian", n_epochs=epochs, init=W0, random_state=0)
        t = time.perf_counter()
        model.fit(X)
        out[key] = model
        return time.perf_counter() - t

    def floor():
        return gemm_floor(X, W0, repeats=3)

    cases = {"none": none, "lloyd": lloyd, "batch": batch, "floor": floor}
    if old_search is not None:
        from somvq._kernels import cpu_bmu

        def with_old_search(fit, key):
            def run():
                current = cpu_bmu.best_matching_units
                cpu_bmu.best_matching_units = old_search  # what algorithms.unit_statistics calls
                try:
                    return fit(key)
                finally:
                    cpu_bmu.best_matching_units = current

            return run

        cases["none@REV"] = with_old_search(none, "none@REV")
        cases["batch@REV"] = with_old_search(batch, "batch@REV")
    for case in cases.values():  # warm-up: compilation caches, thread pools
        case()
    times: dict[str, list[float]] = {c: [] for c in cases}
    names = list(cases)
    for r in range(rounds):
        for c in names[r % len(names) :] + names[: r % len(names)]:
            # Let the BLAS threads of the previous case go to sleep: after the floor's
            # 2-thread product OpenBLAS's worker spins for ~0.1 s, and a case started at
            # once shares a core with it (a "none" fit of Fashion 5000: 185-196 ms right
            # after the floor, 141 ms after 0.3 s; its process CPU 335-370 against 258 ms).
            time.sleep(SETTLE_S)
            times[c].append(cases[c]())
    med = {c: float(np.median(v)) for c, v in times.items()}
    som, km = out["none"], out["lloyd"]
    qe_none = float(((X - som.codebook_[som.labels_]) ** 2).sum(1).mean())
    qe_lloyd = float(km.inertia_ / X.shape[0])
    print(
        f"{label:44s} {med['none'] * 1e3:8.1f} {med['lloyd'] * 1e3:8.1f} {med['none'] / med['lloyd']:10.2f} "
        f"{km.n_iter_:10d} {med['none'] / (epochs + 1) / med['floor']:14.2f} "
        f"{med['batch'] * 1e3:9.1f} {med['batch'] / (epochs * med['floor']):17.2f} {med['floor'] * 1e3:8.2f} "
        f"{qe_none / qe_lloyd:13.5f}" + _old_columns(times, out),
        flush=True,
    )


def _old_columns(times, out) -> str:
    """``--small --old-rev``: median of the rounds' ratios this checkout / REV, and whether
    the two revisions' codebooks are the same bits."""
    if "none@REV" not in times:
        return ""
    ratio = {c: float(np.median(np.array(times[c]) / np.array(times[f"{c}@REV"]))) for c in ("none", "batch")}
    same = all(np.array_equal(out[c].codebook_, out[f"{c}@REV"].codebook_) for c in ("none", "batch"))
    return f" {ratio['none']:9.3f} {ratio['batch']:10.3f} {str(same):>9s}"


if __name__ == "__main__":
    main()
