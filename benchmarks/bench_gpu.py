"""GPU benchmark: somvq's CUDA backend against the CPU backend, torch on the GPU and the GEMM.

    python benchmarks/bench_gpu.py            # N=100000, D=64, 32x16 map, 5 epochs
    python benchmarks/bench_gpu.py --quick    # N=20000, 2 epochs (a minute)

Rows (seconds per epoch, median over ``--rounds``; the same data and initial codebook):

- ``somvq-cuda-batch`` / ``somvq-cuda-minibatch``: ``KSOM(backend="cuda")`` on a device
  array (no host copy of the data), with atomic statistics; ``...-deterministic``: with
  ``cuda_config.DETERMINISTIC_STATISTICS = True`` (the segmented reduction);
- ``somvq-cpu-batch`` / ``somvq-cpu-minibatch``: the CPU backend on the same data;
- ``torch-gpu-batch`` / ``torch-gpu-minibatch``: the same step written in torch on the GPU
  (``addmm`` for the distances, ``argmin``, ``bincount``/``index_add_`` for the
  statistics, a dense ``H`` product, the same update), the reference a GPU user would
  write by hand;
- ``gemm-bound``: one float32 product ``X W^T`` on the GPU (cuBLAS through torch, TF32 off;
  CuPy if torch has no CUDA), the fastest of several: the BMU search's lower bound.

Columns: ``x GEMM`` = seconds per epoch / the GEMM bound, ``vs cuda`` = / the somvq CUDA
entry of the same kind, QE = mean distance to the BMU (float64, on the host).

Without a CUDA GPU (or under NUMBA_ENABLE_CUDASIM) it prints why and exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _no_gpu_reason() -> str | None:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        if os.environ.get("SOMVQ_BENCH_SIMULATOR") == "1":  # smoke test of this script only
            return None
        return "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator cannot be timed"
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover
        return f"numba.cuda cannot be imported ({exc})"
    try:
        if not cuda.is_available():
            return "numba.cuda.is_available() is False (no NVIDIA GPU or driver)"
    except Exception as exc:  # pragma: no cover
        return f"the CUDA driver failed ({exc})"
    return None


def _data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(64, d))
    X = centres[rng.integers(0, 64, n)] + rng.normal(size=(n, d))
    return X.astype(np.float32)


def _quantization_error(X: np.ndarray, W: np.ndarray) -> float:
    from somvq import algorithms

    _, sq = algorithms.assign(X, np.ascontiguousarray(W, dtype=X.dtype))
    return float(np.sqrt(sq).mean())


def _median_time(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# ------------------------------------------------------------------ torch reference
def _torch_cuda():
    try:
        import torch
    except Exception:
        return None
    return torch if torch.cuda.is_available() else None


def _torch_smoothing(torch, grid, neighbourhood, t, device):
    if neighbourhood.kind == "none":
        return None
    H = neighbourhood.matrix(grid.distances, t)
    return torch.as_tensor(H, device=device, dtype=torch.float64)


def _torch_statistics(torch, X, W, chunk: int):
    n_units = W.shape[0]
    counts = torch.zeros(n_units, dtype=torch.float64, device=X.device)
    sums = torch.zeros(W.shape, dtype=torch.float64, device=X.device)
    norms = (W * W).sum(1)
    for start in range(0, X.shape[0], chunk):
        block = X[start : start + chunk]
        dist = torch.addmm(norms, block, W.t(), alpha=-2.0)
        bmu = dist.argmin(1)
        counts += torch.bincount(bmu, minlength=n_units).to(torch.float64)
        sums.index_add_(0, bmu, block.to(torch.float64))
    return counts, sums


def _torch_batch_fit(torch, X, W0, grid, neighbourhood, epochs: int, chunk: int):
    W = W0.clone()
    for t in range(epochs):
        counts, sums = _torch_statistics(torch, X, W, chunk)
        H = _torch_smoothing(torch, grid, neighbourhood, t, X.device)
        if H is not None:
            counts, sums = H @ counts, H @ sums
        hit = counts > 0
        new = W.to(torch.float64)
        new[hit] = sums[hit] / counts[hit, None]
        W = new.to(W.dtype)
    torch.cuda.synchronize()
    return W


def _torch_minibatch_fit(torch, X, W0, grid, neighbourhood, epochs, batch_size, decay, eps, seed):
    W = W0.clone()
    ema_count = torch.ones(W.shape[0], dtype=torch.float64, device=X.device)
    ema_sum = W.to(torch.float64).clone()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    t = 0
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=generator).to(X.device)
        for start in range(0, X.shape[0], batch_size):
            batch = X[order[start : start + batch_size]]
            counts, sums = _torch_statistics(torch, batch, W, batch_size)
            H = _torch_smoothing(torch, grid, neighbourhood, t, X.device)
            if H is not None:
                counts, sums = H @ counts, H @ sums
            ema_count = decay * ema_count + (1 - decay) * counts
            total = ema_count.sum()
            ema_count = (ema_count + eps) / (total + ema_count.shape[0] * eps) * total
            ema_sum = decay * ema_sum + (1 - decay) * sums
            W = (ema_sum / ema_count[:, None]).to(W.dtype)
            t += 1
    torch.cuda.synchronize()
    return W


def _gemm_bound(X_host: np.ndarray, W_host: np.ndarray, repeats: int = 10) -> tuple[float, str]:
    torch = _torch_cuda()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        X = torch.as_tensor(X_host, device="cuda")
        Wt = torch.as_tensor(W_host, device="cuda").t().contiguous()
        best = np.inf
        for _ in range(repeats):
            torch.cuda.synchronize()
            start = time.perf_counter()
            torch.matmul(X, Wt)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return best, "cuBLAS via torch.matmul (float32, TF32 off)"
    try:
        import cupy
    except Exception:
        return float("nan"), "unavailable (neither torch with CUDA nor CuPy installed)"
    X = cupy.asarray(X_host)
    Wt = cupy.ascontiguousarray(cupy.asarray(W_host).T)
    best = np.inf
    for _ in range(repeats):
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        X @ Wt
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
    return best, "cuBLAS via CuPy (float32)"


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=20000, 2 epochs")
    parser.add_argument("--n", type=int, default=None, help="rows (default 100000; 20000 with --quick)")
    parser.add_argument("--d", type=int, default=64, help="features")
    parser.add_argument("--grid", type=int, nargs=2, default=(32, 16), help="map shape")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 5; 2 with --quick)")
    parser.add_argument("--cpu-epochs", type=int, default=1, help="epochs of the (slower) CPU runs")
    parser.add_argument("--batch-size", type=int, default=1024, help="mini-batch size")
    parser.add_argument("--neighbourhood", default="gaussian")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    reason = _no_gpu_reason()
    if reason is not None:
        print(f"bench_gpu: no CUDA GPU to benchmark on ({reason}); nothing measured.")
        print("Run this script on a machine with an NVIDIA GPU, numba-cuda and (for the torch")
        print("reference and the GEMM bound) torch with CUDA or CuPy: pip install 'somvq[cuda]'.")
        return 0

    from numba import cuda

    from somvq import KSOM
    from somvq.grids import Grid
    from somvq.parameters import horizon, training_plan

    n = args.n or (20000 if args.quick else 100000)
    epochs = args.epochs or (2 if args.quick else 5)
    X = _data(n, args.d, args.seed)
    grid_shape = tuple(args.grid)
    n_units = int(np.prod(grid_shape))
    W0 = X[np.random.default_rng(args.seed).choice(n, n_units, replace=False)].copy()
    Xd = cuda.to_device(X)
    common = dict(
        grid=grid_shape,
        neighbourhood=args.neighbourhood,
        init=W0,
        random_state=args.seed,
        batch_size=args.batch_size,
    )

    device = cuda.get_current_device()
    name = getattr(device, "name", "unknown")
    name = name.decode() if isinstance(name, bytes) else str(name)
    print(f"# GPU benchmark: {name} (compute capability {getattr(device, 'compute_capability', '?')})")
    print(
        f"- data: gaussian blobs {n} x {args.d} float32; map {grid_shape[0]}x{grid_shape[1]} "
        f"(K={n_units}); neighbourhood {args.neighbourhood}; mini-batch {args.batch_size}"
    )
    print(
        f"- host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"rounds {args.rounds} (median)"
    )

    rows = []

    def record(label, kind, seconds, epochs_run, codebook):
        rows.append((label, kind, seconds / epochs_run, _quantization_error(X, codebook)))

    from somvq._kernels import cuda_config

    for algorithm in ("batch", "minibatch"):
        for deterministic in (False, True):
            cuda_config.DETERMINISTIC_STATISTICS = deterministic
            KSOM(backend="cuda", algorithm=algorithm, n_epochs=1, **common).fit(Xd[: min(n, 4096)])
            seconds, som = _median_time(
                lambda algorithm=algorithm: KSOM(
                    backend="cuda", algorithm=algorithm, n_epochs=epochs, **common
                ).fit(Xd),
                args.rounds,
            )
            suffix = "-deterministic" if deterministic else ""
            record(f"somvq-cuda-{algorithm}{suffix}", algorithm, seconds, epochs, som.codebook_)
        cuda_config.DETERMINISTIC_STATISTICS = False
        seconds, som = _median_time(
            lambda algorithm=algorithm: KSOM(
                backend="cpu", algorithm=algorithm, n_epochs=args.cpu_epochs, **common
            ).fit(X),
            max(1, min(args.rounds, 2)),
        )
        record(f"somvq-cpu-{algorithm}", algorithm, seconds, args.cpu_epochs, som.codebook_)

    torch = _torch_cuda()
    if torch is not None:
        grid = Grid(grid_shape)
        neighbourhood = training_plan(
            KSOM(**common, algorithm="batch"), grid, horizon(epochs, 1)
        ).neighbourhood
        Xt = torch.as_tensor(X, device="cuda")
        Wt = torch.as_tensor(W0, device="cuda")
        _torch_batch_fit(torch, Xt, Wt, grid, neighbourhood, 1, 16384)  # warm-up
        seconds, W = _median_time(
            lambda: _torch_batch_fit(torch, Xt, Wt, grid, neighbourhood, epochs, 16384), args.rounds
        )
        record("torch-gpu-batch", "batch", seconds, epochs, W.cpu().numpy())
        mb_neighbourhood = training_plan(
            KSOM(**common, algorithm="minibatch"), grid, horizon(epochs, -(-n // args.batch_size))
        ).neighbourhood
        seconds, W = _median_time(
            lambda: _torch_minibatch_fit(
                torch, Xt, Wt, grid, mb_neighbourhood, epochs, args.batch_size, 0.99, 1e-5, args.seed
            ),
            args.rounds,
        )
        record("torch-gpu-minibatch", "minibatch", seconds, epochs, W.cpu().numpy())
    else:
        print("- torch with CUDA not installed: no torch-on-GPU reference rows")

    gemm, gemm_how = _gemm_bound(X, W0)
    print(f"- GEMM bound: {gemm:.4g} s per X.W^T ({gemm_how})")
    print()
    print("| library | kind | s/epoch | x GEMM | vs cuda | QE |")
    print("|---|---|---|---|---|---|")
    reference = {kind: s for label, kind, s, _ in rows if label == f"somvq-cuda-{kind}"}
    for label, kind, seconds, qe in rows:
        print(
            f"| {label} | {kind} | {seconds:.4g} | {seconds / gemm:.3g} | "
            f"{seconds / reference[kind]:.3g} | {qe:.5g} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
