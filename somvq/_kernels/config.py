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
