"""CUDA device-function mirrors of :mod:`somvq._kernels.cpu_neighbourhood`.

``schedule_value`` and ``kernel_value`` evaluate the same formulas under the same integer
codes as the CPU twins (the tests hold them equal); the online kernel and the kernel that
fills the neighbourhood matrix call them on the device. Nothing here is compiled until a
kernel that calls them is launched.
"""

import math

from numba import cuda

# Codes, as in cpu_neighbourhood (and somvq.schedules / somvq.neighbourhoods); repeated
# here so importing this module does not compile the CPU twins.
INVERSE_TIME, EXPONENTIAL_SCHEDULE, LINEAR, CONSTANT = 0, 1, 2, 3
NONE, HARD, EXPONENTIAL, GAUSSIAN, BUBBLE, TRIANGLE, MEXICAN_HAT, CUT_GAUSSIAN = range(8)
NEIGHBOUR_RADIUS = 1.5


@cuda.jit(device=True)
def schedule_value(code, start, end, shrink, horizon, t):
    if code == INVERSE_TIME:
        return start / (1.0 + shrink * t)
    progress = t / horizon
    if progress > 1.0:
        progress = 1.0
    if code == EXPONENTIAL_SCHEDULE:
        return start * (end / start) ** progress
    if code == LINEAR:
        return start + (end - start) * progress
    return start


@cuda.jit(device=True)
def kernel_value(code, d, radius, hard_weight):
    if d == 0.0:
        return 1.0
    if code == NONE:
        return 0.0
    if code == HARD:
        return hard_weight if d < NEIGHBOUR_RADIUS else 0.0
    if code == EXPONENTIAL:
        return math.exp(d * (-1.0 / radius))
    if code == GAUSSIAN:
        return math.exp(d * d * (-0.5 / (radius * radius)))
    if code == BUBBLE:
        return 1.0 if d <= radius else 0.0
    if code == TRIANGLE:
        w = 1.0 - d / radius
        return w if w > 0.0 else 0.0
    if code == MEXICAN_HAT:
        q = d * d / (radius * radius)
        return (1.0 - q) * math.exp(-0.5 * q)
    if code == CUT_GAUSSIAN:
        if d <= radius:
            return math.exp(d * d * (-0.5 / (radius * radius)))
        return 0.0
    return 0.0
