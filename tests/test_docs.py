"""The documentation's Python examples run: every ```python block, in order, per file.

Each file's blocks share one fresh namespace (later blocks use names defined earlier, as a
reader would) and run in a temporary working directory, so examples that save files leave
nothing behind. Outputs shown in ```text blocks are not compared: they depend on BLAS
rounding in the last digits, while a block that raises, or that no longer matches the
API, fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    "README.md",
    "docs/getting-started.md",
    "docs/algorithms.md",
    "docs/api.md",
    "docs/report.md",
    "docs/missing-values.md",
    "docs/supervised.md",
]
_PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown text, in order."""
    return [match.group(1) for match in _PYTHON_BLOCK.finditer(text)]


def test_block_extraction():
    text = "intro\n```python\nx = 1\n```\n```text\nnot code\n```\n```python\nprint(x)\n```\n"
    assert python_blocks(text) == ["x = 1\n", "print(x)\n"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documented_examples_run(document, tmp_path, monkeypatch):
    path = ROOT / document
    if not path.is_file():
        pytest.skip(f"{document} is not in this tree")
    if document == "docs/report.md":
        pytest.importorskip(
            "bokeh", reason="docs/report.md's examples need bokeh (pip install somvq[report])"
        )
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    if document in ("README.md", "docs/getting-started.md"):
        assert blocks, f"{document} has no python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs:{document}"}
    for number, source in enumerate(blocks, start=1):
        code = compile(source, f"{document} [python block {number}]", "exec")
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)
