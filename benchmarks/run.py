"""Benchmark somvq against the peer SOM and k-means libraries; write docs/benchmarks.md.

Every library trains on the same data, the same map, from the same initial codebook, for
the same number of epochs, each run in its own fresh process; the libraries are
interleaved in rounds (the order rotates every round) and the table reports the median
wall time of the training call. Each case also times the float32 GEMM floor X.W^T (the
fastest of several products, whole and in 4096-row blocks) in the same rounds; "x GEMM"
is a library's time per epoch divided by it. Quantization and topographic errors are
computed by one shared function (somvq.metrics) on every final codebook. somvq's rows
also get the time per epoch over the last third of the fit ("late"), from per-epoch
timestamps (``benchmarks._worker``); the NaN-aware row trains on the data with 10% of its
entries set to NaN and is scored on the complete data.

Examples::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.run --quick
    python -m benchmarks.run --data digits gauss-100000-32 --maps 16x32 --rounds 3
    python -m benchmarks.run --libs somvq-batch xpysom kmeans --no-write
    python -m benchmarks.run --data gauss-1000000-16 --maps 20x20 --epochs 30 --no-write \\
        --libs somvq-none somvq-none-full somvq-none-pruned kmeans kmeans-elkan   # issue 17's target
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks import data as bench_data
from benchmarks.trainers import NAN_FRACTION, REFERENCE, SOMVQ_PARAMS, TRAINERS, somvq_estimator

ROOT = Path(__file__).resolve().parent.parent

#: Peers too slow for big inputs are skipped above these row counts (override with
#: --peer-max-rows); the table says so.
MAX_ROWS = {
    "minisom-online": 20_000,
    "minisom-batch": 20_000,
    "somoclu": 100_000,
    "torchsom": 100_000,
    "xpysom": 100_000,
    "somvq-online": 100_000,
    "minibatch-kmeans": 100_000,
}

#: The libraries of every case that names none of its own (``--libs`` overrides).
DEFAULT_LIBS = [
    "somvq-batch",
    "somvq-batch-pruned",
    "somvq-batch-nan",
    "somvq-none",
    "somvq-none-full",
    "somvq-none-pruned",
    "somvq-minibatch",
    "somvq-online",
    "minisom-online",
    "minisom-batch",
    "xpysom",
    "somoclu",
    "torchsom",
    "kmeans",
    "minibatch-kmeans",
]
#: Without issue 17's forced pruned searches, for the cases where they add run time and
#: nothing new: the second map on the same small data (digits 20x20; digits 16x32 and
#: gauss 1e4 show pruning on tiny N), and the 3-epoch cases (Fashion-MNIST, 1e6 x 64),
#: whose last third is one epoch after the bounds' first full pass (the 30-epoch target
#: case shows late epochs). "somvq-none (auto: pruned)" against "somvq-none-full" is kept.
LIBS_NO_FORCED_PRUNING = [
    lib for lib in DEFAULT_LIBS if lib not in ("somvq-batch-pruned", "somvq-none-pruned")
]
#: Issue 17's targets: k-means 1e6 x 16, 20x20, 30 iterations from the same start, somvq's
#: three BMU searches against scikit-learn's Lloyd and Elkan; batch KSOM on the same data
#: (its late epochs against the floor; "auto" runs the ball test late, "full" never). No
#: NaN-aware row here: it would add ~40 s to the run for what the other gauss cases
#: already show.
KMEANS_TARGET_LIBS = [
    "somvq-none",
    "somvq-none-full",
    "somvq-none-pruned",
    "kmeans",
    "kmeans-elkan",
    "somvq-batch",
    "somvq-batch-full",
    "somvq-batch-pruned",
]

#: (data, map, epochs[, libraries]); without libraries a case runs DEFAULT_LIBS.
FULL_CASES = [
    ("digits", "20x20", 10, LIBS_NO_FORCED_PRUNING),
    ("digits", "16x32", 10),
    ("gauss-10000-16", "20x20", 10),
    ("gauss-100000-32", "16x32", 10),
    ("fashion", "16x32", 3, LIBS_NO_FORCED_PRUNING),
    ("gauss-1000000-64", "16x32", 3, LIBS_NO_FORCED_PRUNING),
    ("gauss-1000000-16", "20x20", 30, KMEANS_TARGET_LIBS),
]
#: How cost grows: somvq's time per epoch against N at K = 512, and against K at
#: N = 1e5 (maps 10x10 .. 64x64, K = 100 .. 4096), next to the GEMM floor of each case.
SCALING_CASES = [
    ("gauss-10000-32", "16x32", 3),
    ("gauss-100000-32", "16x32", 3),
    ("gauss-1000000-32", "16x32", 3),
    ("gauss-100000-32", "10x10", 3),
    ("gauss-100000-32", "20x20", 3),
    ("gauss-100000-32", "32x32", 3),
    ("gauss-100000-32", "64x64", 3),
]
SCALING_LIBS = ["somvq-batch", "somvq-none", "somvq-minibatch"]
QUICK_CASES = [
    ("digits", "16x32", 10),
    ("gauss-10000-16", "20x20", 10),
    ("gauss-100000-32", "16x32", 5),
]
PACKAGES = ["somvq", "numpy", "numba", "scikit-learn", "MiniSom", "XPySom", "somoclu", "torchsom", "torch"]


@dataclass
class Result:
    lib: str
    seconds: list = field(default_factory=list)
    late: list = field(default_factory=list)
    peak: list = field(default_factory=list)
    error: str | None = None
    codebook: np.ndarray | None = None


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _run_worker(lib, data_path, init_path, shape, epochs, out_path, timeout):
    cmd = [
        sys.executable,
        "-m",
        "benchmarks._worker",
        lib,
        str(data_path),
        str(init_path),
        str(shape[0]),
        str(shape[1]),
        str(epochs),
        str(out_path),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=_child_env(), timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {tail[:160]}"}
    return json.loads(lines[-1])


def run_case(name, shape, epochs, libs, rounds, online_epochs, max_rows, timeout, log):
    from somvq import metrics
    from somvq.grids import Grid

    X = bench_data.load(name)
    W0 = bench_data.initial_codebook(X, shape[0] * shape[1])
    tmp = Path(tempfile.mkdtemp(prefix="somvq-bench-"))
    np.save(tmp / "X.npy", X)
    np.save(tmp / "W0.npy", W0)
    libs = [lib for lib in libs if not _same_as_auto(lib, X.shape[0], shape, epochs, X.shape[1])]
    results = {lib: Result(lib) for lib in ["gemm", *libs]}
    for lib in libs:
        limit = max_rows.get(lib)
        if limit is not None and X.shape[0] > limit:
            results[lib].error = f"skipped: N > {limit} rows (too slow; --peer-max-rows)"
    order = ["gemm", *libs]
    for r in range(rounds):
        rotated = order[r % len(order) :] + order[: r % len(order)]
        for lib in rotated:
            res = results[lib]
            if res.error:
                continue
            lib_epochs = online_epochs if TRAINERS.get(lib, (None, ""))[1] == "online" else epochs
            out = tmp / f"{lib}.npy"
            got = _run_worker(lib, tmp / "X.npy", tmp / "W0.npy", shape, lib_epochs, out, timeout)
            if "error" in got:
                res.error = got["error"]
                log(f"  {name} {shape} {lib}: {res.error}")
                continue
            res.seconds.append(got["seconds"])
            if "late_seconds" in got:
                res.late.append(got["late_seconds"])
            if "peak_bytes" in got:
                res.peak.append(got["peak_bytes"])
                res.codebook = np.load(out)
            log(f"  round {r + 1}/{rounds} {name} {shape[0]}x{shape[1]} {lib}: {got['seconds']:.4g} s")
    _check_same_bits(name, shape, results)
    gemm = min(results["gemm"].seconds) if results["gemm"].seconds else float("nan")
    grid = Grid(shape)
    rows = []
    for lib in libs:
        res = results[lib]
        kind = TRAINERS[lib][1]
        lib_epochs = online_epochs if kind == "online" else epochs
        row = {
            "data": name,
            "n": X.shape[0],
            "d": X.shape[1],
            "map": f"{shape[0]}x{shape[1]}",
            "lib": lib,
            "label": search_label(lib, X.shape[0], shape, lib_epochs, X.shape[1]),
            "kind": kind,
            "epochs": lib_epochs,
            "gemm": gemm,
            "error": res.error,
        }
        if not res.error and res.seconds:
            med = statistics.median(res.seconds)
            row.update(
                seconds=med,
                per_epoch=med / lib_epochs,
                x_gemm=med / lib_epochs / gemm,
                samples_per_s=X.shape[0] * lib_epochs / med,
                peak_mib=max(res.peak) / 2**20 if res.peak else float("nan"),
            )
            if res.late:
                late = statistics.median(res.late)
                row.update(late_per_epoch=late, late_x_gemm=late / gemm)
            cb = res.codebook.astype(np.float32)
            row["qe"] = metrics.quantization_error(X, cb)
            row["te"] = (
                metrics.topographic_error(X, cb, grid)
                if kind != "kmeans" and not lib.startswith("minibatch-kmeans")
                else None
            )
        rows.append(row)
    by_lib = {row["lib"]: row for row in rows}
    for row in rows:
        ref = by_lib.get(REFERENCE[row["kind"]])
        if "per_epoch" in row and ref is not None and "per_epoch" in ref:
            row["ratio"] = row["per_epoch"] / ref["per_epoch"]
    for path in tmp.iterdir():
        path.unlink()
    tmp.rmdir()
    return rows


def _check_same_bits(name, shape, results) -> None:
    """The table's claim "every search gives the same bits": somvq-X (bmu_search="auto"),
    somvq-X-full and somvq-X-pruned ended on the same codebook (float32, bit for bit)."""
    for base in ("somvq-batch", "somvq-none"):
        books = {
            lib: results[lib].codebook
            for lib in (base, f"{base}-full", f"{base}-pruned")
            if lib in results and results[lib].codebook is not None and not results[lib].error
        }
        first, *others = books or [None]
        for lib in others:
            if not np.array_equal(books[first], books[lib]):
                raise AssertionError(
                    f"{name} {shape[0]}x{shape[1]}: {lib} ended on another codebook than {first}; "
                    "every BMU search must give the same bits"
                )


def _auto_prunes(lib, n_rows, shape, epochs, n_features=1) -> bool | None:
    """Whether somvq trainer ``lib`` (default ``bmu_search="auto"``) runs the pruned search
    on ``n_rows`` x ``n_features`` data.

    ``None`` for the trainers where the question does not arise: not somvq, not batch, an
    explicit ``bmu_search``, or missing values (the masked search never prunes).
    """
    params = SOMVQ_PARAMS.get(lib)
    if (
        params is None
        or params["algorithm"] != "batch"
        or "bmu_search" in params
        or params.get("missing", "error") != "error"
    ):
        return None
    from somvq import parameters

    som = somvq_estimator(lib, shape, epochs, None)
    steps = parameters.steps_per_pass("batch", n_rows, som.batch_size)
    plan = parameters.training_plan(
        som, parameters.grid_of(som, n_samples=n_rows), parameters.horizon(epochs, steps)
    )
    return parameters.use_pruned_search(plan, n_rows, n_features)


def search_label(lib, n_rows, shape, epochs, n_features=1) -> str:
    """The table's name for ``lib``: somvq's default-search rows say what "auto" ran."""
    prunes = _auto_prunes(lib, n_rows, shape, epochs, n_features)
    if prunes is None:
        return lib
    if prunes and SOMVQ_PARAMS[lib].get("neighbourhood") != "none":
        return f"{lib} (auto: ball test where it pays)"  # decided pass by pass
    return f"{lib} (auto: {'pruned' if prunes else 'full'})"


def _same_as_auto(lib, n_rows, shape, epochs, n_features=1) -> bool:
    """``somvq-X-full`` where ``somvq-X`` ("auto") searches in full too: the same fit, not run."""
    if not lib.endswith("-full"):
        return False
    base = lib[: -len("-full")]
    return _auto_prunes(base, n_rows, shape, epochs, n_features) is False


def _fmt(value, spec):
    return (
        "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)
    )


def markdown_table(rows) -> str:
    head = (
        "| data | N x D | map | library | epochs | median s | s/epoch | x GEMM/epoch | "
        "late s/epoch | late x GEMM | vs somvq | samples/s | QE | TE | peak MiB |"
    )
    lines = [head, "|" + "---|" * 15]
    for row in rows:
        label = row.get("label", row["lib"])
        if row.get("error"):
            lines.append(
                f"| {row['data']} | {row['n']}x{row['d']} | {row['map']} | {label} | "
                f"{row['epochs']} | {row['error']} ||||||||||"
            )
            continue
        lines.append(
            f"| {row['data']} | {row['n']}x{row['d']} | {row['map']} | {label} | {row['epochs']} | "
            f"{_fmt(row['seconds'], '.3g')} | {_fmt(row['per_epoch'], '.3g')} | "
            f"{_fmt(row['x_gemm'], '.3g')} | {_fmt(row.get('late_per_epoch'), '.3g')} | "
            f"{_fmt(row.get('late_x_gemm'), '.3g')} | {_fmt(row.get('ratio'), '.3g')} | "
            f"{_fmt(row['samples_per_s'], '.3g')} | {_fmt(row['qe'], '.5g')} | "
            f"{_fmt(row['te'], '.3f')} | {_fmt(row['peak_mib'], '.1f')} |"
        )
    return "\n".join(lines)


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}, Python {platform.python_version()}"


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        infos = threadpool_info()
        return "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
            f"threads={i.get('num_threads')}"
            for i in infos
        )
    except Exception as exc:  # pragma: no cover - informational only
        return f"unknown ({exc!r})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few-minute subset")
    parser.add_argument("--data", nargs="+", help="digits, fashion, gauss-N-D (e.g. gauss-100000-32)")
    parser.add_argument("--maps", nargs="+", help="map shapes, e.g. 20x20 16x32")
    parser.add_argument("--epochs", type=int, help="epochs for every case (default: per case)")
    parser.add_argument("--online-epochs", type=int, default=1, help="epochs of the online trainers")
    parser.add_argument(
        "--libs",
        nargs="+",
        choices=list(TRAINERS),
        help="libraries for every case (default: each case's own list, DEFAULT_LIBS for most)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-max-rows", type=int, help="skip slow peers above this many rows")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--scaling",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time somvq against N and K (default: on for the full run)",
    )
    parser.add_argument(
        "--first-fit",
        type=int,
        metavar="REPEATS",
        help="time import somvq and the first fit in REPEATS fresh processes (benchmarks.first_fit) "
        "for the header (default: 7 for the full run, 0 otherwise)",
    )
    parser.add_argument(
        "--scaling-rounds",
        type=int,
        default=2,
        help="rounds of the N and K cases (default 2: trends, not ratios; saves ~1 min)",
    )
    args = parser.parse_args(argv)

    if args.data or args.maps:
        cases = [
            (d, m, args.epochs or 10) for d in (args.data or ["digits"]) for m in (args.maps or ["16x32"])
        ]
    else:
        cases = QUICK_CASES if args.quick else FULL_CASES
        if args.epochs:
            cases = [(d, m, args.epochs, *rest) for d, m, _, *rest in cases]
    rounds = 2 if args.quick and args.rounds == 3 else args.rounds
    max_rows = dict(MAX_ROWS)
    if args.peer_max_rows is not None:
        max_rows = {k: args.peer_max_rows for k in max_rows}

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if os.environ.get("OPENBLAS_CORETYPE"):
        log(
            "note: OPENBLAS_CORETYPE is set; numpy's BLAS may run an older kernel "
            "(unset it in the benchmark command to measure the native one)."
        )
    load_start = os.getloadavg()
    started = time.time()
    rows = []
    case_loads = []
    for name, map_text, epochs, *case_libs in cases:
        shape = tuple(int(s) for s in map_text.lower().split("x"))
        libs = args.libs or (case_libs[0] if case_libs else DEFAULT_LIBS)
        case_loads.append(f"{name} {map_text} {os.getloadavg()[0]:.2f}")
        log(f"case {name} map {map_text} epochs {epochs} (load average {os.getloadavg()[0]:.2f})")
        rows += run_case(name, shape, epochs, libs, rounds, args.online_epochs, max_rows, args.timeout, log)
    scaling = args.scaling if args.scaling is not None else not (args.quick or args.data or args.maps)
    scaling_rows = []
    if scaling:
        libs = [lib for lib in SCALING_LIBS if lib in (args.libs or SCALING_LIBS)] or SCALING_LIBS
        for name, map_text, epochs in SCALING_CASES:
            shape = tuple(int(s) for s in map_text.lower().split("x"))
            log(f"scaling case {name} map {map_text} epochs {epochs}")
            scaling_rows += run_case(
                name,
                shape,
                epochs,
                libs,
                args.scaling_rounds,
                args.online_epochs,
                max_rows,
                args.timeout,
                log,
            )
    first_fit_repeats = (
        args.first_fit if args.first_fit is not None else (0 if (args.quick or args.data or args.maps) else 7)
    )
    first_use = None
    if first_fit_repeats > 0:
        from benchmarks import first_fit

        log(f"first fit in {first_fit_repeats} fresh processes")
        first_use = first_fit.measure(first_fit_repeats)
    table = markdown_table(rows)
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    env_note = " ".join(
        f"{k}={os.environ[k]}"
        for k in ("OMP_WAIT_POLICY", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
        if k in os.environ
    )
    header = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run.py`; see docs/performance.md for how to read and rerun it.",
        "",
        f"- command: `{command}` (environment: {env_note or 'default'}; workers get OMP_WAIT_POLICY=PASSIVE)",
        f"- machine: {_machine()}",
        f"- BLAS (threadpoolctl): {_blas()}",
        f"- versions: {_versions()}",
        f"- rounds: {rounds} (median); wall time {time.time() - started:.0f} s; load average "
        f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end"
        + (
            " (measured while other jobs shared the machine)"
            if max(load_start[0], os.getloadavg()[0]) > 1.0
            else ""
        ),
        f"- load average (1 min) before each case: {', '.join(case_loads)}",
        *([f"- first use (`python -m benchmarks.first_fit`): {first_use}"] if first_use else []),
        "",
        "Columns: *x GEMM/epoch* = seconds per epoch / the float32 GEMM floor X.W^T of that case; "
        "*late s/epoch* = mean seconds per epoch over the last third of the epochs (epochs // 3 "
        "of them) from timestamps taken after every epoch by KSOM.fit's callback, so without "
        "setup and the final labels_ pass (somvq only, 3 epochs or more; '-' for peers, which "
        "have no per-epoch hook); *late x GEMM* = that / the floor; "
        "*vs somvq* = seconds per epoch / those of the somvq entry of the same kind "
        "(SOMs vs somvq-batch, KMeans vs somvq-none, mini-batch vs somvq-minibatch, online vs "
        "somvq-online); QE = mean distance to the BMU, TE = topographic error (8-neighbour), both "
        "by somvq.metrics on each final codebook and the complete data (TE only for maps); "
        "peak MiB = growth of the worker's max RSS during the training call.",
        "",
        'somvq-batch and somvq-none use KSOM\'s default bmu_search="auto"; the name says what it '
        "ran on that case: '(auto: pruned)', '(auto: full)', or for somvq-batch '(auto: ball test "
        "where it pays)' (decided pass by pass: the late passes). somvq-X-full and somvq-X-pruned "
        "force the search; a -full row is left out where auto already searches in full (the same "
        "fit). Every search gives the same bits, hence the same QE. somvq-batch-nan trains "
        f'with missing="ignore" on the same data with {NAN_FRACTION:.0%} of the entries set to NaN (seeded; '
        "the masked search, never pruned); its *vs somvq* is its epoch / the dense somvq-batch "
        "epoch, its QE is on the complete data.",
        "",
        "Libraries: "
        + "; ".join(
            f"{lib} = {TRAINERS[lib][2]}" for lib in dict.fromkeys(row["lib"] for row in rows + scaling_rows)
        )
        + ".",
        "",
        table,
        "",
    ]
    if scaling_rows:
        header += [
            "## How cost grows",
            "",
            f"somvq only, float32, 3 epochs each, {args.scaling_rounds} rounds (median): time per "
            "epoch against N (K = 512, D = 32) "
            "and against K (N = 1e5, D = 32, maps 10x10, 20x20, 16x32, 32x32, 64x64); *x GEMM/epoch* "
            "is against each case's own GEMM floor (the floor grows as N K D).",
            "",
            markdown_table(scaling_rows),
            "",
        ]
    text = "\n".join(header)
    print(text)
    if not args.no_write:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
