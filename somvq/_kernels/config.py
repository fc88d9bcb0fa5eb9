"""Tunables shared by the kernels: one place to change them."""

#: Rows per block of the BMU search. A block's (rows x K) product stays in cache while the
#: argmin and the accumulation read it; the extra memory is O(threads * CHUNK_ROWS * K).
#: Blocks are searched in parallel, so a 1024-row mini-batch still uses two cores. The
#: blocks are fixed by this number alone: results do not depend on the thread count.
CHUNK_ROWS = 512

#: LLVM fast-math flags that keep NaN/inf semantics (unlike fastmath=True): reassociation
#: and contraction let loops vectorise, "nnan"/"ninf" are deliberately absent.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

#: Compile to the on-disk cache so a fresh process does not recompile.
CACHE = True

#: Units per group of the pruned search's lower bounds when the number of groups is not
#: given (Yinyang k-means' ``K / 10``, Ding et al. 2015, with groups of consecutive unit
#: indices: neighbours on a map, which move together): 4 bytes a row each.
UNITS_PER_GROUP = 10
#: Most groups (memory: 4 bytes a row each).
MAX_GROUPS = 64


def default_groups(n_units: int) -> int:
    """Groups of the pruned search's bounds for ``K`` units: ``K / UNITS_PER_GROUP``, 1 to
    :data:`MAX_GROUPS`. Here, not in ``cpu_pruned``, so that the memory estimate of every
    fit can read it without loading the pruned search's compiled kernels."""
    return max(1, min(MAX_GROUPS, n_units // UNITS_PER_GROUP))


#: Most units a row re-checks in the ball around its old winner (``cpu_pruned.check_rows``),
#: as a fraction of K; a larger ball sends the row to the product. A direct distance at
#: D = 16 costs about what the product spends on 6-7 units; replayed, K / 8 gave the
#: cheapest late passes (docs/performance.md, round 14). Here, not in ``cpu_pruned``, for
#: the memory estimate, as :func:`default_groups`.
BALL_FRACTION = 1 / 8

#: Most bytes of the ball's table in lanes (``cpu_pruned.ball_table``): 1.4 MB at K = 400,
#: D = 16 (every listed unit); at D = 784 a group of 8 units per list would take 12.8 MB,
#: and the ball screens nothing there (the ball rarely runs at that D, see "auto").
BALL_TABLE_BYTES = 1 << 22
