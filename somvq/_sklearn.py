"""The one module that imports scikit-learn's private or semi-private helpers.

scikit-learn moves these between releases; keeping every such import here means a change
there is mended in one place.
"""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: F401
