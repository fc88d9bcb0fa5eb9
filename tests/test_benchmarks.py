"""benchmarks/run.py: the table's new columns and rows (issue 17, item 4). No timing asserted."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import _worker, data, run, trainers

    return run, _worker, data, trainers


def test_late_epoch_seconds_is_the_mean_over_the_last_third(bench):
    _, worker, _, _ = bench
    # epochs end at 1, 3, 6, 10, 15, 21 s after a start at 0: epoch lengths 1 2 3 4 5 6
    stamps = [1.0, 3.0, 6.0, 10.0, 15.0, 21.0]
    assert worker.late_epoch_seconds(0.0, stamps, 6) == pytest.approx((5 + 6) / 2)
    # 10 epochs: the last 3 (10 // 3)
    stamps = list(np.cumsum(np.arange(1.0, 11.0)))
    assert worker.late_epoch_seconds(0.0, stamps, 10) == pytest.approx((8 + 9 + 10) / 3)
    # 3 epochs: the last one, whose start is the second stamp (not the fit's start)
    assert worker.late_epoch_seconds(100.0, [101.0, 103.0, 107.0], 3) == pytest.approx(4.0)
    # nothing to time: fewer than 3 epochs, or stamps missing (early stop, no callback)
    assert worker.late_epoch_seconds(0.0, [1.0, 2.0], 2) is None
    assert worker.late_epoch_seconds(0.0, [1.0, 2.0], 6) is None
    assert worker.late_epoch_seconds(0.0, [], 6) is None


def test_with_holes_is_seeded_and_leaves_no_empty_row(bench):
    _, _, data, _ = bench
    X = np.arange(4000 * 3, dtype=np.float32).reshape(4000, 3)
    A = data.with_holes(X, 0.4, seed=3)
    B = data.with_holes(X, 0.4, seed=3)
    np.testing.assert_array_equal(np.isnan(A), np.isnan(B))
    assert not np.isnan(X).any()  # a copy
    assert A.dtype == X.dtype
    assert 0.35 < np.isnan(A).mean() < 0.45
    assert not np.isnan(A).all(axis=1).any()
    kept = ~np.isnan(A)
    np.testing.assert_array_equal(A[kept], X[kept])


def test_labels_say_what_auto_ran(bench):
    run, _, _, trainers = bench
    from somvq.parameters import PRUNED_MIN_PASSES, PRUNED_MIN_ROWS

    big, small, long = PRUNED_MIN_ROWS, PRUNED_MIN_ROWS - 1, PRUNED_MIN_PASSES
    assert run.search_label("somvq-none", big, (4, 4), long) == "somvq-none (auto: pruned)"
    assert run.search_label("somvq-none", big, (4, 4), long - 1) == "somvq-none (auto: full)"
    assert run.search_label("somvq-none", small, (4, 4), long) == "somvq-none (auto: full)"
    assert run.search_label("somvq-batch", big, (4, 4), long) == "somvq-batch (auto: ball test where it pays)"
    assert run.search_label("somvq-batch", small, (4, 4), long) == "somvq-batch (auto: full)"
    # fewer passes on wide data (parameters.pruned_min_passes): the label follows
    assert run.search_label("somvq-none", big, (4, 4), 5, 256) == "somvq-none (auto: pruned)"
    assert run.search_label("somvq-none", big, (4, 4), 5, 16) == "somvq-none (auto: full)"
    for lib in (
        "somvq-none-full",
        "somvq-none-pruned",
        "somvq-batch-full",
        "somvq-batch-pruned",
        "somvq-batch-nan",
    ):
        assert run.search_label(lib, big, (4, 4), long) == lib
    for lib in ("somvq-minibatch", "somvq-online", "kmeans", "xpysom"):
        assert run.search_label(lib, big, (4, 4), long) == lib
    # a -full row is not run where "auto" already searches in full
    assert run._same_as_auto("somvq-none-full", small, (4, 4), long)
    assert not run._same_as_auto("somvq-none-full", big, (4, 4), long)
    assert not run._same_as_auto("somvq-none-pruned", small, (4, 4), long)
    # the explicit searches really are what the trainers ask KSOM for
    assert trainers.somvq_estimator("somvq-none-pruned", (4, 4), 3, None).bmu_search == "pruned"
    assert trainers.somvq_estimator("somvq-none-full", (4, 4), 3, None).bmu_search == "full"
    assert trainers.somvq_estimator("somvq-batch", (4, 4), 3, None).bmu_search == "auto"
    assert trainers.somvq_estimator("somvq-batch-nan", (4, 4), 3, None).missing == "ignore"


def test_full_run_has_issue_17_target_case(bench):
    run, _, _, _ = bench
    cases = {(d, m, e): rest for d, m, e, *rest in run.FULL_CASES}
    libs = cases[("gauss-1000000-16", "20x20", 30)][0]
    for lib in (
        "somvq-none",
        "somvq-none-full",
        "somvq-none-pruned",
        "kmeans",
        "kmeans-elkan",
        "somvq-batch",
    ):
        assert lib in libs
    assert "somvq-batch-nan" in run.DEFAULT_LIBS
    assert all(lib in run.TRAINERS for lib in run.DEFAULT_LIBS + libs)


def test_run_smoke(bench, capsys, monkeypatch, tmp_path):
    """Tiny full run: one worker process per library, the table and its columns.

    A case with its own library list runs exactly those (``--epochs`` overrides the case's
    epochs, not its list); "How cost grows" and the first-fit line come with a full run.
    """
    run, _, _, _ = bench
    libs = ["somvq-batch", "somvq-batch-nan", "somvq-none", "somvq-none-full", "somvq-none-pruned", "kmeans"]
    monkeypatch.setattr(run, "FULL_CASES", [("gauss-400-4", "2x3", 9, libs)])
    monkeypatch.setattr(run, "SCALING_CASES", [("gauss-300-4", "2x2", 3)])
    output = tmp_path / "table.md"
    argv = ["--epochs", "3", "--rounds", "1", "--scaling-rounds", "1", "--first-fit", "1"]
    assert run.main([*argv, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert output.read_text() + "\n" == out  # print adds one newline
    assert "load average (1 min) before each case: gauss-400-4 2x3 " in out
    assert "- first use (`python -m benchmarks.first_fit`): import somvq " in out
    assert "(medians of 1 fresh processes;" in out
    # the scaling section: somvq's batch and k-means rows only, its own rounds
    scaling = out.split("## How cost grows", 1)[1]
    assert "3 epochs each, 1 rounds (median)" in scaling
    assert "| gauss-300-4 | 300x4 | 2x2 | somvq-batch (auto: full) |" in scaling
    assert "| gauss-300-4 | 300x4 | 2x2 | somvq-none (auto: full) |" in scaling
    assert "kmeans" not in scaling
    out = out.split("## How cost grows", 1)[0]
    rows = {
        cells[3]: cells
        for line in out.splitlines()
        if line.startswith("| gauss-400-4")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    header = next(line for line in out.splitlines() if line.startswith("| data |"))
    assert "| late s/epoch | late x GEMM |" in header
    # 400 rows: "auto" searches in full, so the -full row is the same fit and not run
    assert set(rows) == {
        "somvq-batch (auto: full)",
        "somvq-batch-nan",
        "somvq-none (auto: full)",
        "somvq-none-pruned",
        "kmeans",
    }
    for label, cells in rows.items():
        assert len(cells) == 15, cells
        assert cells[4] == "3", cells
        late = cells[8]
        if label == "kmeans":
            assert late == "-"
        else:
            assert float(late) > 0, cells
    # every search gives the same codebook, hence the same QE
    assert rows["somvq-none (auto: full)"][12] == rows["somvq-none-pruned"][12]
    assert "Libraries: " in out and "10% of the entries NaN" in out


def test_bench_search_smoke_with_an_earlier_revision(monkeypatch, capsys):
    """benchmarks/bench_search.py on a tiny case, timing HEAD's rank_block beside this one
    (loaded from git by benchmarks._revision: the revision's interface, whatever it is)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_search

    assert bench_search.main(["--cases", "5x9", "--rows", "20", "--repeats", "2", "--old-rev", "HEAD"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "rank us     HEAD  block us  fused us" in lines[1]
    cells = lines[2].split()
    assert cells[:3] == ["5", "9", "20"] and len(cells) == 13
    assert all(float(c) > 0 for c in cells[3:])


def test_load_kernels_redirects_imports_between_the_loaded_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks._revision import load_kernels

    old = load_kernels("HEAD", ["cpu_scores", "cpu_bmu"])
    assert old["cpu_bmu"].__name__ == "somvq._kernels._rev_HEAD_cpu_bmu"
    assert old["cpu_bmu"].lowest is old["cpu_scores"].lowest  # not this checkout's module
    row = np.array([3.0, -1.0, 2.0], dtype=np.float32)
    assert old["cpu_scores"].lowest(row) == -1.0


def test_load_kernels_redirects_module_imports_too(monkeypatch):
    # cpu_pruned reads the ranking through ``from . import cpu_bmu``: the loaded copy's
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks._revision import load_kernels

    old = load_kernels("HEAD", ["cpu_scores", "cpu_bmu", "cpu_pruned"])
    assert old["cpu_pruned"].cpu_bmu is old["cpu_bmu"]
    assert old["cpu_pruned"].lowest is old["cpu_scores"].lowest


def test_bench_pruned_smoke_with_an_earlier_revision(monkeypatch, capsys):
    """benchmarks/bench_pruned.py --old-rev: HEAD's pruned-search kernels swapped in for one
    side of a tiny k-means case; the same bits as this checkout's, the kernels put back."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_pruned
    from somvq._kernels import cpu_pruned

    mine = cpu_pruned.pruned_search
    args = ["--rows", "600", "--map", "3x4", "--epochs", "3", "--rounds", "1", "--kmeans-only", "--no-elkan"]
    bench_pruned.main([*args, "--old-rev", "HEAD"])
    out = capsys.readouterr().out
    assert "kmeans-pruned@HEAD" in out
    assert "same labels and codebook bits: True" in out
    assert cpu_pruned.pruned_search is mine


def test_bench_pruned_small_with_an_earlier_revision(monkeypatch, capsys):
    """benchmarks/bench_pruned.py --small --old-rev: the "none" and batch fits through HEAD's
    dense search beside this checkout's; the same bits, the search put back."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_pruned
    from somvq._kernels import cpu_bmu

    mine = cpu_bmu.best_matching_units
    monkeypatch.setattr(bench_pruned, "SETTLE_S", 0.0)
    size = ["--sizes", "gauss-3000-8", "--small-map", "3x4", "--small-epochs", "3"]
    bench_pruned.main(["--small", *size, "--rounds", "1", "--old-rev", "HEAD"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-4:] == ["none/@REV", "batch/@REV", "same", "bits"]
    cells = lines[2].split()
    assert cells[0] == "gauss-3000-8" and cells[-1] == "True"
    assert float(cells[-3]) > 0 and float(cells[-2]) > 0
    assert cpu_bmu.best_matching_units is mine


def test_bench_pruned_passes_smoke(monkeypatch, capsys):
    """benchmarks/bench_pruned.py --passes: k-means fits pruned / full by number of passes,
    the rule's threshold named, the same bits."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_pruned

    bench_pruned.main(["--passes", "--sizes", "gauss-3000-8", "--map", "3x4", "--pass-counts", "2", "3"])
    lines = capsys.readouterr().out.splitlines()
    from somvq.parameters import pruned_min_passes

    rule = pruned_min_passes(3000, 8)
    assert lines[0].startswith(f"gauss-3000-8 3000 x 8, map 3x4: auto prunes from {rule} passes")
    assert len(lines) == 3 and all(line.endswith("same bits True") for line in lines[1:])


def test_early_bounds_keep_every_rows_winner(monkeypatch, capsys):
    """benchmarks/early_bounds.py (round 21): the subspace bounds never drop a row's nearest
    unit, leave only it when the subspace is the whole space, and the script runs."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import early_bounds

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * [1, 2, 3, 4, 5] + 1e4
    W = X[rng.choice(300, 12, replace=False)] + rng.normal(scale=0.1, size=(12, 5))
    winner = ((X[:, None, :] - W[None]) ** 2).sum(-1).argmin(axis=1)
    for m in range(6):
        mask = early_bounds.candidates(X, W, m)
        assert mask[np.arange(300), winner].all()
    assert (early_bounds.candidates(X, W, 5).sum(axis=1) == 1).all()
    early_bounds.main(
        [
            "--rows",
            "2000",
            "--features",
            "4",
            "--map",
            "3x3",
            "--epochs",
            "3",
            "--sample",
            "200",
            "--dims",
            "1",
            "2",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch")


def test_bench_minibatch_smoke_with_a_map(monkeypatch, capsys):
    """benchmarks/bench_minibatch.py on digits with --map: the map it was given, a ratio
    to the floor, and the compiled pass's per-thread profile line."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_minibatch

    args = ["--data", "digits", "--map", "3x4", "--batch-sizes", "256", "--rounds", "1", "--sides", "new"]
    assert bench_minibatch.main(args) == 0
    out = capsys.readouterr().out
    assert "digits 3x4, hard: GEMM floor" in out
    assert "x floor" in out and "new pass, last round:" in out


def test_load_kernels_adds_the_revisions_changed_helpers_first(monkeypatch):
    """A named module's imports that differ at the revision are loaded from it first, in
    dependency order (so an old cpu_bmu does not meet a newer cpu_fused); unchanged and
    named ones are not added."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import _revision

    sources = {
        "cpu_bmu": "from .cpu_fused import a\nfrom .cpu_scores import b\nfrom .config import c\n",
        "cpu_fused": "from .cpu_scores import b\n",
        "config": "",
        "cpu_sync": "",
        "cpu_minibatch_step": "from .cpu_bmu import x\nfrom . import cpu_sync\n",
    }
    monkeypatch.setattr(_revision, "_source", lambda rev, name: sources[name])
    monkeypatch.setattr(_revision, "_changed", lambda rev, name: name in ("cpu_fused", "cpu_sync", "config"))
    names = _revision._with_changed_dependencies("X", ["cpu_bmu", "cpu_minibatch_step"])
    assert names == ["cpu_fused", "config", "cpu_bmu", "cpu_sync", "cpu_minibatch_step"]


def test_roofline_loops_compute_their_chains_and_the_script_runs(monkeypatch, capsys):
    """benchmarks/roofline.py (round 23): the peak loops do the arithmetic they are counted
    for (each chain its own multiply-adds, none folded away), and the script runs."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import roofline

    # float32: chain i starts at i and becomes i * 0.999 + 0.001 a trip; lane 0 of the sum
    assert roofline.fma_chains(0) == 66.0
    assert roofline.fma_chains(1) == pytest.approx(sum(i * 0.999 + 0.001 for i in range(12)), rel=1e-6)
    if roofline.has_avx2():
        # int16: chain i starts at i; trip t adds (3 + i) * t twice (a pair of products)
        chains = roofline.INT_CHAINS
        start = sum(range(chains))
        assert roofline.madd_chains(1) == start  # trip 0 adds nothing
        assert roofline.madd_chains(3) == start + sum(2 * (3 + i) * (1 + 2) for i in range(chains))
    monkeypatch.setattr(roofline, "TRIPS", 1000)
    monkeypatch.setattr(roofline, "TARGET_BLOCK", 48)
    roofline.main(["--rows", "3000", "--units", "8", "--features", "5", "--shapes", "24x4x3"])
    out = capsys.readouterr().out
    assert "lowest_two 48 x 8 x 5" in out and "lowest_two 24 x 4 x 3" in out
    assert "GEMM floor 3000 x 8 x 5" in out and "18 full passes at 0.84x the floor each" in out
