"""The documentation's Python examples run: every ```python block, in order, per file.

Each file's blocks share one fresh namespace (later blocks use names defined earlier, as a
reader would) and run in a temporary working directory, so examples that save files leave
nothing behind. A ```python block followed directly by a ```text block must print that
text: the words exactly (whitespace aside), the numbers to 0.5% (they may move in the last
digits with the BLAS build and the thread count).
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
_OUTPUT_BLOCK = re.compile(r"\s*```text[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown text, in order."""
    return [match.group(1) for match in _PYTHON_BLOCK.finditer(text)]


def shown_outputs(text: str) -> list[str | None]:
    """For each ```python block, the ```text block right after it (None when there is none)."""
    outputs = []
    for match in _PYTHON_BLOCK.finditer(text):
        after = _OUTPUT_BLOCK.match(text, match.end())
        outputs.append(after.group(1) if after else None)
    return outputs


def same_output(printed: str, shown: str, rel: float = 5e-3) -> bool:
    """``printed`` reads as ``shown``: equal words, numbers within ``rel`` (relative)."""
    words = [" ".join(_NUMBER.sub("#", t).split()) for t in (printed, shown)]
    if words[0] != words[1]:
        return False
    numbers = [[float(n) for n in _NUMBER.findall(t)] for t in (printed, shown)]
    return len(numbers[0]) == len(numbers[1]) and all(
        abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-12 for a, b in zip(*numbers, strict=True)
    )


def test_output_comparison():
    assert shown_outputs("```python\nprint(1)\n```\n\n```text\n1\n```\n```python\nx\n```\n") == [
        "1\n",
        None,
    ]
    assert same_output("QE 14.621  TE 0.117\n", "QE 14.62 TE 0.117")
    assert not same_output("QE 15.9 TE 0.117", "QE 14.621 TE 0.117")
    assert not same_output("TE 0.117 QE 14.621", "QE 14.621 TE 0.117")


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
    text = path.read_text(encoding="utf-8")
    blocks, outputs = python_blocks(text), shown_outputs(text)
    if document in ("README.md", "docs/getting-started.md"):
        assert blocks, f"{document} has no python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs:{document}"}
    for number, (source, shown) in enumerate(zip(blocks, outputs, strict=True), start=1):
        code = compile(source, f"{document} [python block {number}]", "exec")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)
        if shown is not None:
            assert same_output(printed.getvalue(), shown), (
                f"{document} [python block {number}] printed\n{printed.getvalue()}\nbut the page shows\n{shown}"
            )
