"""Kernel modules of another git revision, imported into this process beside this checkout's.

For benchmarks that compare a kernel with an earlier version of itself in one process
(``bench_minibatch --old-rev``, ``bench_search --old-rev``): each named module of
``somvq/_kernels`` is read from ``git show REV:...``, written to a temporary folder and
imported as ``somvq._kernels._rev_<rev>_<name>``, so that its relative imports resolve to
this checkout's package. Imports between the loaded modules (``from .name import ...``
and ``from . import name``) are redirected to the loaded copies (name them in dependency
order). A kernel module that a named one imports and that differs between the revision and
this checkout (``git diff REV -- file``) is loaded from the revision first, unnamed, so that
the revision's modules see their own helpers (cpu_bmu at a revision with another
cpu_fused); every other kernel is this checkout's.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]

#: Modules loaded in this process, by (commit, the names loaded up to and including it):
#: a module depends only on the ones named before it, so a list that begins as an earlier
#: one reuses those modules (their Numba signatures compile at import, ~10-60 s each).
_LOADED: dict = {}


def load_kernels(rev: str, names: list[str]) -> dict:
    """``{name: module}`` of ``somvq/_kernels/<name>.py`` at ``rev``."""
    folder = Path(tempfile.mkdtemp(prefix="somvq-rev-"))
    tag = "".join(c if c.isalnum() else "_" for c in rev)
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    names = _with_changed_dependencies(rev, names)
    loaded: dict = {}
    for i, name in enumerate(names):
        key = (commit, tag, tuple(names[: i + 1]))
        if key in _LOADED:
            loaded[name] = _LOADED[key]
            continue
        source = _source(rev, name)
        for earlier in loaded:
            source = source.replace(f"from .{earlier} import", f"from ._rev_{tag}_{earlier} import")
            source = re.sub(
                rf"^(\s*)from \. import {earlier}$",
                rf"\1from . import _rev_{tag}_{earlier} as {earlier}",
                source,
                flags=re.MULTILINE,
            )
        module_name = f"somvq._kernels._rev_{tag}_{name}"
        path = folder / f"_rev_{tag}_{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        loaded[name] = _LOADED[key] = module
    return loaded


def _source(rev: str, name: str) -> str:
    """``somvq/_kernels/<name>.py`` as it is at ``rev``."""
    return subprocess.run(
        ["git", "show", f"{rev}:somvq/_kernels/{name}.py"],
        cwd=_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _changed(rev: str, name: str) -> bool:
    """Whether ``somvq/_kernels/<name>.py`` differs between ``rev`` and this checkout."""
    command = ["git", "diff", "--quiet", rev, "--", f"somvq/_kernels/{name}.py"]
    return subprocess.run(command, cwd=_ROOT).returncode != 0


def _with_changed_dependencies(rev: str, names: list[str]) -> list[str]:
    """``names`` with, before each, the kernel modules it imports (recursively) whose file at
    ``rev`` differs from this checkout's and that are not named."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dep in re.findall(r"^\s*from \.(\w+) import|^\s*from \. import (\w+)$", _source(rev, name), re.M):
            dep = dep[0] or dep[1]
            if dep in names or not (_ROOT / "somvq" / "_kernels" / f"{dep}.py").exists():
                continue
            if _changed(rev, dep):
                visit(dep)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered
