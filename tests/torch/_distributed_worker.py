"""The body of one process of the 2-process gloo test (kept free of pytest imports)."""

from __future__ import annotations

import datetime

import numpy as np
import torch
import torch.distributed as dist

from somvq.integrations.torch import KohonenVectorQuantize

N_UNITS, DIM, ROWS, STEPS = 16, 3, 40, 5


def batches() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=(ROWS, DIM)) + 0.3 * i for i in range(STEPS)]


def make_quantizer(seed: int, neighbourhood: str, init=None) -> KohonenVectorQuantize:
    torch.manual_seed(seed)
    return KohonenVectorQuantize(
        dim=DIM, codebook_size=N_UNITS, neighbourhood=neighbourhood, init=init
    ).double()


def run(
    rank: int, world_size: int, port: int, neighbourhood: str, out_dir: str, init=None, compiled: bool = False
) -> None:
    """``init``: None, a data-dependent method (rank 0's first half-batch initialises every
    rank), or "nan" (rank 0's first half-batch is all NaN: every rank must raise, none hang).
    ``compiled``: train through ``torch.compile(vq, fullgraph=False)`` (the collectives run
    eagerly, docs/torch.md "torch.compile")."""
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        # Different seeds: the initial state must come from rank 0's broadcast.
        vq = make_quantizer(seed=rank, neighbourhood=neighbourhood, init="sample" if init == "nan" else init)
        if init == "nan":
            part = torch.from_numpy(batches()[0][: ROWS // world_size])
            if rank == 0:
                part = torch.full_like(part, float("nan"))
            try:
                vq(part)
            except ValueError as error:
                with open(f"{out_dir}/rank{rank}.err", "w") as handle:
                    handle.write(str(error))
            return
        calls = {"all_reduce": 0}
        original = dist.all_reduce

        def counting_all_reduce(*args, **kwargs):
            calls["all_reduce"] += 1
            return original(*args, **kwargs)

        dist.all_reduce = counting_all_reduce
        half = ROWS // world_size
        indices = []
        step = torch.compile(vq, fullgraph=False) if compiled else vq
        for X in batches():
            part = torch.from_numpy(X[rank * half : (rank + 1) * half])
            indices.append(step(part)[1])
        assert calls["all_reduce"] == STEPS, calls
        vq.eval()
        vq(torch.from_numpy(batches()[0]))
        assert calls["all_reduce"] == STEPS, "eval must run no collective"
        dist.all_reduce = original
        torch.save(
            {**{k: v.clone() for k, v in vq.state_dict().items()}, "indices": torch.cat(indices)},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()
