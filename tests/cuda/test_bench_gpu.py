"""benchmarks/bench_gpu.py runs end to end (under the simulator: a smoke test, no timing)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_smoke(monkeypatch, capsys):
    monkeypatch.setenv("SOMVQ_BENCH_SIMULATOR", "1")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_gpu

    assert (
        bench_gpu.main(
            [
                "--n",
                "32",
                "--d",
                "3",
                "--grid",
                "2",
                "3",
                "--epochs",
                "1",
                "--rounds",
                "1",
                "--batch-size",
                "16",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for label in ("somvq-cuda-batch", "somvq-cuda-minibatch-deterministic", "somvq-cpu-minibatch"):
        assert f"| {label} |" in out


def test_bench_gpu_without_gpu_exits_cleanly(monkeypatch, capsys):
    monkeypatch.delenv("SOMVQ_BENCH_SIMULATOR", raising=False)
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import bench_gpu

    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        pytest.skip("a GPU is present: the benchmark would run for real")
    assert bench_gpu.main(["--quick"]) == 0
    assert "no CUDA GPU to benchmark on" in capsys.readouterr().out
