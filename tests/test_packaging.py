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
