"""Sphinx configuration: the docs/ Markdown pages (MyST) plus an API reference built from
the numpydoc docstrings. Build (warnings are errors, as in CI):

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import somvq

project = "somvq"
author = "somvq developers"
copyright = "somvq developers"
release = somvq.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_click",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated"]

# MyST: Markdown pages link each other as files ([x](api.md)); headings get anchors so
# in-page links (#somvqksom) resolve; $...$ maths as in GitHub's renderer.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 4
# A link to a page that does not exist is a warning, hence an error (-W): none suppressed.

# autodoc / numpydoc
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # members are documented by autodoc, not repeated in a table
numpydoc_xref_param_type = False
autosummary_generate = False

# No intersphinx: CI has no network, and an unreachable inventory is a warning (-W fails).

html_theme = "pydata_sphinx_theme"
html_title = f"somvq {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
