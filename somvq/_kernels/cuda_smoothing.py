"""Neighbourhood smoothing ``n = H c``, ``s = H S`` on the GPU.

The CPU smooths with the cheapest exact operator (separable, identity or dense, see
:func:`somvq.neighbourhoods.smoothing_operator`); on the GPU the dense form is used for
every kernel and grid: :func:`neighbourhood_matrix` fills ``H_t`` from the grid distances
(kept on the device) with :func:`cuda_neighbourhood.kernel_value`, the same formula as
:meth:`somvq.neighbourhoods.Neighbourhood.matrix`, and :func:`smooth` computes the
products with one thread per output element, summing over units in a fixed order
(deterministic). Cost O(K^2 D) per step; "none" (H = I) skips it.
"""

from __future__ import annotations

from functools import cache

from numba import cuda

from . import cuda_config
from .cuda_neighbourhood import kernel_value


@cache
def _build(tile: int):
    @cuda.jit
    def matrix_kernel(distances, code, radius, hard_weight, out):
        a, b = cuda.grid(2)
        if a < out.shape[0] and b < out.shape[1]:
            out[a, b] = kernel_value(code, distances[a, b], radius, hard_weight)

    @cuda.jit
    def smooth_kernel(H, counts, sums, out_counts, out_sums):
        # x: feature (column n_features stands for the counts), y: unit
        j, k = cuda.grid(2)
        n_units = sums.shape[0]
        n_features = sums.shape[1]
        if k >= n_units or j > n_features:
            return
        acc = 0.0
        if j == n_features:
            for l in range(n_units):
                acc += H[k, l] * counts[l]
            out_counts[k] = acc
        else:
            for l in range(n_units):
                acc += H[k, l] * sums[l, j]
            out_sums[k, j] = acc

    return matrix_kernel, smooth_kernel


def _blocks(n: int, tile: int) -> int:
    return (n + tile - 1) // tile


def neighbourhood_matrix(distances, code, radius, hard_weight, out):
    """``out[a, b] = h(distances[a, b])`` for the kernel ``code`` (device arrays, float64)."""
    tile = cuda_config.SMOOTH_TILE
    matrix_kernel, _ = _build(tile)
    n = out.shape[0]
    matrix_kernel[(_blocks(n, tile), _blocks(n, tile)), (tile, tile)](
        distances, int(code), float(radius), float(hard_weight), out
    )


def smooth(H, counts, sums, out_counts, out_sums):
    """``out_counts = H counts``, ``out_sums = H sums`` (float64 device arrays)."""
    tile = cuda_config.SMOOTH_TILE
    _, smooth_kernel = _build(tile)
    n_units, n_features = sums.shape
    smooth_kernel[(_blocks(n_features + 1, tile), _blocks(n_units, tile)), (tile, tile)](
        H, counts, sums, out_counts, out_sums
    )
