"""torch.distributed for the KSOM-EMA quantizer: one all-reduce per step, one broadcast.

docs/algorithms.md §7: because H_t is linear, summing the *un-smoothed* hit counts c (K)
and sums S (K x D) over all processes before the EMA equals single-process training on the
concatenated batch. The quantizer keeps c and S in one flat buffer ``[counts | sums]`` so
a step costs exactly one all-reduce of K (1 + D) numbers; smoothing happens afterwards.
The initial state is broadcast from rank 0 once, before the first training step. Nothing
here runs in eval mode.

Under ``torch.compile`` the two collectives are ``torch.compiler.disable``-d: they always
run eagerly, outside the compiled graph (a graph break, so a distributed model compiles
with ``fullgraph=False``; a single-process run never reaches them and compiles with
``fullgraph=True``). See docs/torch.md "torch.compile".
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["is_distributed", "rank", "all_reduce_statistics", "broadcast_tensors"]


def is_distributed() -> bool:
    """True when a default process group with more than one process is initialised."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return torch.distributed.get_rank() if is_distributed() else 0


@torch.compiler.disable
def all_reduce_statistics(flat_statistics: torch.Tensor) -> torch.Tensor:
    """Sum ``[counts | sums]`` over all processes, in place (one collective)."""
    torch.distributed.all_reduce(flat_statistics, op=torch.distributed.ReduceOp.SUM)
    return flat_statistics


@torch.compiler.disable
def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` on every process with rank ``src``'s values, in place."""
    for tensor in tensors:
        torch.distributed.broadcast(tensor, src=src)
