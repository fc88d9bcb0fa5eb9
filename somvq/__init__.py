"""somvq: Kohonen Self-Organising Maps as vector quantisers.

``import somvq`` is light: the estimator (and with it numba and scikit-learn) is imported
on first use of a name below, never at import time.

>>> from somvq import KSOM          # doctest: +SKIP
>>> som = KSOM(grid=(16, 32)).fit(X) # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .analysis import cluster_samples, cluster_units, label_units
    from .estimator import KSOM
    from .grids import Grid, auto_grid_shape
    from .imputer import SOMImputer
    from .io import load, save
    from .reporting import report
    from .supervised import KSOMClassifier, KSOMRegressor

__all__ = [
    "KSOM",
    "KSOMClassifier",
    "KSOMRegressor",
    "Grid",
    "auto_grid_shape",
    "save",
    "load",
    "report",
    "SOMImputer",
    "cluster_units",
    "cluster_samples",
    "label_units",
    "__version__",
]

_LAZY = {
    "KSOM": "somvq.estimator",
    "Grid": "somvq.grids",
    "auto_grid_shape": "somvq.grids",
    "save": "somvq.io",
    "load": "somvq.io",
    "report": "somvq.reporting",
    "SOMImputer": "somvq.imputer",
    "cluster_units": "somvq.analysis",
    "cluster_samples": "somvq.analysis",
    "label_units": "somvq.analysis",
    "KSOMClassifier": "somvq.supervised",
    "KSOMRegressor": "somvq.supervised",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'somvq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
