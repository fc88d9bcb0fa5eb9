"""What the pictures (:mod:`somvq.plotting`) and the HTML report (:mod:`somvq.reporting`) share.

The hexagon of a hexagonal grid cell and the guard that imports an optional drawing
library (matplotlib, bokeh) or says which extra installs it.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

#: Circumradius of a hexagon whose opposite (flat) sides are 1 apart: the cell of a unit
#: of a hexagonal grid, whose neighbours' centres are 1 apart (:class:`somvq.grids.Grid`).
HEX_RADIUS = 1.0 / math.sqrt(3.0)


def require_module(
    name: str, *, purpose: str, extra: str, error: type[ImportError], min_major: int | None = None
) -> Any:
    """Import the optional module ``name`` or raise ``error`` naming ``pip install somvq[extra]``.

    ``purpose`` starts the message ("plotting needs matplotlib, ..."); with ``min_major``
    an older major version is refused too.
    """
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise error(f"{purpose} needs {name}, which is not installed: pip install somvq[{extra}]") from None
    if min_major is not None:
        version = str(getattr(module, "__version__", "0"))
        if int(version.split(".")[0]) < min_major:
            raise error(
                f"{purpose} needs {name} {min_major} or later, found {version}: pip install 'somvq[{extra}]'"
            )
    return module
