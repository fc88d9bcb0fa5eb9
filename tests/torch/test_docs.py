"""docs/torch.md's runnable example runs (with fewer steps) and its API block is current."""

import inspect
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from somvq.integrations.torch import KohonenVectorQuantize  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "torch.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_runnable_example_runs(capsys):
    example = next(block for block in _python_blocks() if "load_digits" in block)
    assert "range(300)" in example
    exec(compile(example.replace("range(300)", "range(15)"), str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "step 15" in out and "U-matrix (8, 8)" in out


def test_documented_constructor_arguments_exist():
    api = next(block for block in _python_blocks() if block.lstrip().startswith("KohonenVectorQuantize("))
    documented = set(re.findall(r"(\w+)=", api.split("quantized, indices, loss")[0]))
    parameters = set(inspect.signature(KohonenVectorQuantize).parameters)
    assert documented <= parameters, documented - parameters
    assert parameters - {"dim", "codebook_size"} <= documented, parameters - documented
