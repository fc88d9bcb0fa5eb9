"""CUDA device-function compilation of :mod:`neighbourhood_formulas`.

``schedule_value`` and ``kernel_value`` are the very source the CPU kernels compile (see
:mod:`cpu_neighbourhood`); the online kernel and the kernel that fills the neighbourhood
matrix call them on the device. Nothing here is compiled until such a kernel is launched.
"""

from numba import cuda

from . import neighbourhood_formulas as formulas

schedule_value = cuda.jit(device=True)(formulas.schedule_value)
kernel_value = cuda.jit(device=True)(formulas.kernel_value)
