"""One VQ-VAE training step: somvq's KohonenVectorQuantize vs vector-quantize-pytorch.

A step is what a VQ-VAE pays per batch for its quantizer: forward in training mode
(BMU search, codebook update) plus the backward of the returned loss through the
straight-through output. Both layers use decay 0.99, commitment 0.25, N(0, I) codebooks,
no k-means init, no dead-code replacement and no rotation trick (plain straight-through).

The implementations are interleaved in rounds on the same input, and the medians and their
ratio are printed (targets, docs/torch.md "Speed": KohonenVectorQuantize <= 0.3x EMA
VectorQuantize; compiled step no slower than the eager one). ``--compile`` adds the row
"somvq ... compiled": the same step with the layer's forward and loss under
``torch.compile(fullgraph=True)`` (compiled during the warm-up rounds; the backward runs
the compiled backward graph).

Usage (2-core CPU; set the thread count you want to measure)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_torch.py --rows 16384 --codes 512 --dim 64 --compile

Needs ``pip install vector-quantize-pytorch`` (with ``--no-deps`` if pip would change
torch; then install einops, einx, frozendict, loguru, torch-einops-utils by hand).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

EAGER = "somvq KohonenVectorQuantize ({})"
COMPILED = "somvq KohonenVectorQuantize ({}) compiled"
THEIRS = "vector-quantize-pytorch EMA VectorQuantize"


def make_layers(dim: int, codes: int, neighbourhood: str, compiled: bool):
    """name -> step function ``f(z)``: somvq eager (and compiled), then vector-quantize-pytorch
    when it is installed."""
    from somvq.integrations.torch import KohonenVectorQuantize

    def ours():
        return KohonenVectorQuantize(
            dim=dim,
            codebook_size=codes,
            neighbourhood=neighbourhood,
            decay=0.99,
            commitment_weight=0.25,
        ).train()

    steps = {EAGER.format(neighbourhood): _stepper(ours())}
    if compiled:
        steps[COMPILED.format(neighbourhood)] = _stepper(ours(), compile_forward=True)
    try:
        from vector_quantize_pytorch import VectorQuantize
    except ImportError:
        print("vector-quantize-pytorch is not installed: its row is left out")
    else:
        steps[THEIRS] = _stepper(
            VectorQuantize(
                dim=dim,
                codebook_size=codes,
                decay=0.99,
                commitment_weight=0.25,
                kmeans_init=False,
                threshold_ema_dead_code=0,
                rotation_trick=False,
            ).train()
        )
    return steps


def _stepper(layer, compile_forward: bool = False):
    def forward_loss(z):
        quantized, _, loss = layer(z)
        return quantized.square().mean() + loss.sum()

    if compile_forward:
        forward_loss = torch.compile(forward_loss, fullgraph=True)

    def training_step(z: torch.Tensor) -> None:
        forward_loss(z.detach().requires_grad_(True)).backward()

    return training_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16384, help="B', latent vectors per step")
    parser.add_argument("--codes", type=int, default=512, help="K, codebook size")
    parser.add_argument("--dim", type=int, default=64, help="D, latent size")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--neighbourhood", default="hard")
    parser.add_argument(
        "--compile", action="store_true", help="also time the step with torch.compile(fullgraph=True)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = make_layers(args.dim, args.codes, args.neighbourhood, args.compile)
    # (batch, tokens, dim): 16 images of 32 x 32 latents for B' = 16384.
    z = torch.randn(16, args.rows // 16, args.dim)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(args.warmup):
        for step in layers.values():
            step(z)
    for _ in range(args.rounds):
        for name, step in layers.items():
            start = time.perf_counter()
            step(z)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"B'={z.shape[0] * z.shape[1]}, K={args.codes}, D={args.dim}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.rounds} interleaved rounds"
    )
    for name, value in medians.items():
        print(f"  {name:<50s} median {value * 1e3:8.2f} ms")
    eager = medians[EAGER.format(args.neighbourhood)]
    if THEIRS in medians:
        print(f"  ratio somvq / vector-quantize-pytorch: {eager / medians[THEIRS]:.2f}x")
    if COMPILED.format(args.neighbourhood) in medians:
        print(f"  ratio compiled / eager: {medians[COMPILED.format(args.neighbourhood)] / eager:.2f}x")


if __name__ == "__main__":
    main()
