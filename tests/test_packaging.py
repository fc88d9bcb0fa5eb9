"""Packaging and import-time contracts."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    """`import somvq` imports neither numba, scikit-learn nor torch."""
    code = (
        "import sys, json, somvq; "
        "print(json.dumps([m for m in ('numba', 'sklearn', 'torch', 'matplotlib') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_fit_loads_only_the_kernels_it_runs():
    """A fit loads the compiled kernels of its own path only: each module's cached overloads
    cost first-use time (tens of ms each; docs/performance.md). A batch fit below the
    pruned search's size must not load the pruned search (the memory estimate reads its
    group count from the kernels' config, not from it), nor the mini-batch pass, nor the
    online kernels."""
    code = (
        "import sys, json, numpy as np; from somvq import KSOM; "
        "X = np.random.default_rng(0).normal(size=(300, 4)); "
        "KSOM(grid=(4, 5), n_epochs=2, random_state=0).fit(X); "
        "KSOM(grid=(4, 5), neighbourhood='none', n_epochs=2, random_state=0).fit(X); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('somvq._kernels.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "somvq._kernels.cpu_bmu" in loaded  # the scan sees the search that ran
    assert "somvq._kernels.cpu_pruned" not in loaded
    assert "somvq._kernels.cpu_online" not in loaded
    # the block search lives in cpu_bmu: the mini-batch pass stays unloaded (cpu_sync, the
    # atomics that the search's threads share with it, holds no compiled code of its own)
    assert "somvq._kernels.cpu_minibatch_step" not in loaded


def test_public_names():
    import somvq

    assert somvq.KSOM.__module__ == "somvq.estimator"
    assert callable(somvq.save) and callable(somvq.load)
    assert somvq.__version__
    with pytest.raises(AttributeError):
        somvq.not_a_name  # noqa: B018


@pytest.mark.slow
def test_wheel_contains_cli_and_integrations(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("somvq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "somvq/__init__.py",
        "somvq/py.typed",
        "somvq/_kernels/cpu_bmu.py",
        "somvq/cli/__init__.py",
        "somvq/integrations/__init__.py",
        "somvq/integrations/torch/__init__.py",
        "somvq/integrations/dask/__init__.py",
        "somvq/integrations/vqvae/__init__.py",
    ):
        assert required in names, required
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
