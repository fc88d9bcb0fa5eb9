"""Launch tunables of the CUDA kernels: one place to change them.

The kernels are built on first use from the values found here at that moment (shared-
memory tile shapes are compile-time constants), so tests patch tiny sizes in before the
first launch: the CUDA simulator runs every thread as a Python thread.

Every ``*_THREADS`` and ``BMU_TILE_UNITS`` must be a power of two (tree reductions).
"""

#: Threads per block of the element-wise kernels (updates, casts, checks).
THREADS_PER_BLOCK = 256

#: BMU search: rows (block y), units (block x) and features per shared-memory tile.
#: A block is ``BMU_TILE_UNITS x BMU_TILE_ROWS`` threads and searches ``BMU_TILE_ROWS`` rows.
BMU_TILE_ROWS = 16
BMU_TILE_UNITS = 16
BMU_TILE_FEATURES = 32

#: Neighbourhood smoothing ``H S``: 2-D blocks of ``SMOOTH_TILE x SMOOTH_TILE`` threads.
SMOOTH_TILE = 16

#: Threads of the single-block kernels: the online loop and the EMA count reduction.
ONLINE_THREADS = 256
REDUCE_THREADS = 256

#: Hit counts and per-unit sums: False adds them with float64 atomics (fast; the sums'
#: last bits depend on the hardware's ordering), True with a deterministic segmented
#: reduction (rows sorted stably by winner, each unit's rows summed in row order: the
#: same bits on every run, and the same bits as the CPU's accumulation for the same
#: winners), at the cost of a few more kernels per step.
DETERMINISTIC_STATISTICS = False

#: Rows per chunk of the deterministic reduction's stable counting sort.
STATISTICS_CHUNK_ROWS = 256

#: Samples per launch of the online kernel (keeps each launch short; the order of the
#: updates does not depend on it).
ONLINE_CHUNK = 8192


def check() -> None:
    """Raise ValueError for tunables the kernels cannot use."""
    for name in ("BMU_TILE_UNITS", "ONLINE_THREADS", "REDUCE_THREADS"):
        value = globals()[name]
        if value < 1 or value & (value - 1):
            raise ValueError(f"cuda_config.{name}={value!r} must be a power of two.")
    for name in (
        "THREADS_PER_BLOCK",
        "BMU_TILE_ROWS",
        "BMU_TILE_FEATURES",
        "SMOOTH_TILE",
        "ONLINE_CHUNK",
        "STATISTICS_CHUNK_ROWS",
    ):
        value = globals()[name]
        if value < 1:
            raise ValueError(f"cuda_config.{name}={value!r} must be >= 1.")
