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
