"""CPU (numba.njit) compilation of :mod:`neighbourhood_formulas`.

The online update evaluates h_t(k*, k) sample by sample inside a compiled loop, where the
NumPy/torch definitions cannot be called; these are the scalar versions it calls.
"""

from numba import njit

from . import neighbourhood_formulas as formulas
from .config import CACHE

schedule_value = njit("float64(int64, float64, float64, float64, float64, float64)", cache=CACHE)(
    formulas.schedule_value
)
kernel_value = njit("float64(int64, float64, float64, float64)", cache=CACHE)(formulas.kernel_value)
