"""Measures of one finished run: its log's summary and its codebook's quality.

:func:`summarise_log` reads the training log (validation losses, perplexities);
:func:`evaluate_run` adds measures of the final model's codebook on validation images
(topographic error, neighbour/all distance ratio, the reconstruction change when every
latent index moves :data:`SHIFT_OFFSETS` grid steps, see :func:`shift_indices`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .data import ImageData
from .runs import load_run

__all__ = ["SHIFT_OFFSETS", "shift_indices", "evaluate_run", "summarise_log"]

SHIFT_OFFSETS = (1, 2, 3)


def shift_indices(indices: torch.Tensor, grid_shape: Sequence[int], offset: int) -> torch.Tensor:
    """Move every index ``offset`` grid steps along the grid's last axis (reflected at the edge)."""
    columns = int(grid_shape[-1])
    column = indices % columns
    moved = column + offset
    period = 2 * (columns - 1) if columns > 1 else 1
    moved = moved % period
    moved = torch.where(moved > columns - 1, period - moved, moved) if columns > 1 else moved * 0
    return indices - column + moved


@torch.no_grad()
def evaluate_run(directory: str | os.PathLike, data: ImageData, n_images: int = 2000) -> dict[str, Any]:
    """Final model's codebook measures on (up to ``n_images``) validation images.

    Returns the log summary (final/best validation loss, steps to 1.1x and 1.2x of the
    best, early and final perplexity) and the codebook's topographic error (of the
    encoder outputs, via :meth:`KohonenVectorQuantize.to_estimator`), neighbour/all
    distance ratio, used codes and the reconstruction change under index shifts.
    """
    from somvq.metrics import neighbour_distance_ratio

    config, model, records = load_run(directory, data.channels)
    summary = summarise_log(records)
    images = data.validation[:n_images]
    latents = torch.cat([model.encoder(images[i : i + 500]) for i in range(0, images.shape[0], 500)])
    rows = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).numpy().astype(np.float64)
    quantizer = model.quantizer
    som = quantizer.to_estimator()
    summary["topographic_error"] = float(som.topographic_error(rows))
    summary["neighbour_ratio"] = neighbour_distance_ratio(quantizer.codebook.numpy(), quantizer.grid)
    _, indices, _ = quantizer(latents)
    base_images = torch.cat(
        [model.decode_indices(indices[i : i + 500]) for i in range(0, indices.shape[0], 500)]
    )
    for offset in SHIFT_OFFSETS:
        shifted = shift_indices(indices, quantizer.grid_shape, offset)
        decoded = torch.cat(
            [model.decode_indices(shifted[i : i + 500]) for i in range(0, shifted.shape[0], 500)]
        )
        summary[f"shift{offset}_change"] = float(((decoded - base_images) ** 2).mean())
    summary["variant"] = f"{config.neighbourhood}-n{config.init_count:g}-{config.update}"
    summary["seed"] = config.seed
    return summary


def summarise_log(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Final and best validation loss, steps to 1.1x/1.2x of the best, perplexities."""
    validated = [r for r in records if r.get("val_loss") is not None]
    if not validated:
        raise ValueError("the run has no validation record.")
    losses = np.array([r["val_loss"] for r in validated])
    steps = np.array([r["step"] for r in validated])
    best = float(losses.min())
    total = int(records[-1]["step"])
    early = [r["perplexity"] for r in records if r["step"] <= max(1, total // 10)]
    late = [r["perplexity"] for r in records if r["step"] > total - max(1, total // 10)]
    early_val = (
        validated[int(np.searchsorted(steps, max(1, total // 10)))]
        if steps[-1] >= total // 10
        else validated[-1]
    )
    return {
        "steps": total,
        "seconds": float(records[-1]["seconds"]),
        "final_val_loss": float(losses[-1]),
        "best_val_loss": best,
        "steps_to_1.2x": int(steps[np.argmax(losses <= 1.2 * best)]),
        "steps_to_1.1x": int(steps[np.argmax(losses <= 1.1 * best)]),
        "early_val_loss": float(early_val["val_loss"]),
        "early_step": int(early_val["step"]),
        "early_perplexity": float(np.mean(early)),
        "final_perplexity": float(np.mean(late)),
        "used_codes": int(validated[-1]["val_used_codes"]),
    }
