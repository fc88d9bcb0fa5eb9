"""The schedule and neighbourhood formulas as plain scalar Python, compiled twice.

:mod:`cpu_neighbourhood` compiles these functions with ``numba.njit`` and
:mod:`cuda_neighbourhood` with ``numba.cuda.jit(device=True)``: the CPU and GPU kernels
evaluate one source. They mirror the array definitions of :mod:`somvq.schedules` and
:mod:`somvq.neighbourhoods` under the integer codes ``SCHEDULE_CODES`` and
``NEIGHBOURHOOD_CODES``; the tests hold them equal for every code. This module imports
nothing heavy and compiles nothing.
"""

import math

# Codes, as in somvq.schedules.SCHEDULE_CODES / somvq.neighbourhoods.NEIGHBOURHOOD_CODES.
INVERSE_TIME, EXPONENTIAL_SCHEDULE, LINEAR, CONSTANT = 0, 1, 2, 3
NONE, HARD, EXPONENTIAL, GAUSSIAN, BUBBLE, TRIANGLE, MEXICAN_HAT, CUT_GAUSSIAN = range(8)
NEIGHBOUR_RADIUS = 1.5
#: Learning-rate code of online KSOM's ``1 / n_k*`` (the schedules' codes are >= 0).
INVERSE_COUNT = -1


def schedule_value(code, start, end, shrink, horizon, t):
    if code == INVERSE_TIME:
        return start / (1.0 + shrink * t)
    progress = t / horizon
    if progress >= 1.0 and (code == EXPONENTIAL_SCHEDULE or code == LINEAR):
        return end  # exactly (the power and the sum round; somvq.schedules)
    if code == EXPONENTIAL_SCHEDULE:
        return start * (end / start) ** progress
    if code == LINEAR:
        return start + (end - start) * progress
    return start


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
