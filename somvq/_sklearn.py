"""The one module that imports scikit-learn's private or semi-private helpers.

scikit-learn moves these between releases; keeping every such import here means a change
there is mended in one place.
"""

from typing import Any

import numpy as np
from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401
from sklearn.utils.validation import check_is_fitted  # noqa: F401
from sklearn.utils.validation import validate_data as _validate_data


def validate_data(*args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data``, without its floating-point warnings: its fast
    finiteness check sums X, which overflows for finite float32 data near 3e38 ("invalid
    value encountered in reduce") before the exact check passes the data."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _validate_data(*args, **kwargs)
