"""Two CPU processes (gloo), each with half of every batch, equal one process on the whole."""

import socket
import time

import pytest

torch = pytest.importorskip("torch")

if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from . import _distributed_worker as worker  # noqa: E402

TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_two_processes(neighbourhood, out_dir, init=None, compiled=False):
    import torch.multiprocessing as mp

    context = mp.start_processes(
        worker.run,
        args=(2, _free_port(), neighbourhood, str(out_dir), init, compiled),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the 2-process gloo run did not finish in {TIMEOUT_S} s")
    finally:
        for process in context.processes:  # only the processes this test started
            if process.is_alive():
                process.kill()


@pytest.mark.parametrize(
    "neighbourhood, init, compiled", [("hard", None, False), ("hard", "kmeans", False), ("hard", None, True)]
)
def test_two_gloo_processes_equal_one_process(neighbourhood, init, compiled, tmp_path):
    # init="kmeans" (issue 18): rank 0's first half-batch initialises both ranks (they
    # have other seeds and other rows), then training goes on as one process.
    # compiled: torch.compile(vq) with the all-reduce kept out of the graph (issue 18).
    _run_two_processes(neighbourhood, tmp_path, init, compiled)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in ("codebook", "ema_count", "ema_sum", "step", "usage_ring"):
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    single = worker.make_quantizer(seed=0, neighbourhood=neighbourhood, init=init)
    if init is not None:
        single.init_from(torch.from_numpy(worker.batches()[0][: worker.ROWS // 2]))
    indices = []
    for X in worker.batches():
        indices.append(single(torch.from_numpy(X))[1])
    torch.testing.assert_close(ranks[0]["codebook"], single.codebook, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ranks[0]["ema_count"], single.ema_count, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ranks[0]["ema_sum"], single.ema_sum, rtol=1e-12, atol=1e-12)
    assert int(ranks[0]["step"]) == int(single.step) == worker.STEPS
    half = worker.ROWS // 2
    for step, whole in enumerate(indices):
        assert torch.equal(ranks[0]["indices"][step * half : (step + 1) * half], whole[:half])
        assert torch.equal(ranks[1]["indices"][step * half : (step + 1) * half], whole[half:])


def test_init_from_a_bad_batch_on_rank_0_raises_on_every_rank_without_hanging(tmp_path):
    _run_two_processes("hard", tmp_path, "nan")
    for r in (0, 1):
        message = (tmp_path / f"rank{r}.err").read_text()
        assert "init='sample' needs at least codebook_size=16 finite rows on rank 0, got 0 of 20" in message
