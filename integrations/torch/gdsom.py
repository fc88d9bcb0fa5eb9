"""GradientKohonenVectorQuantize: the gradient-trained SOM codebook (GD-SOM).

docs/torch.md (GD-SOM), from the reference implementation: the codebook is an
``nn.Parameter`` trained by the optimiser with

    MSE(sg(z_e), z_q) + alpha MSE(z_e, sg(z_q))
      + lambda * mean_i sum_k h_t(k*_i, k) ||w_k - sg(w_{k*_i})||^2

so each winner's grid neighbours are pulled toward the winner's code (not toward the
input). The neighbourhood term is computed from the K-sized hit counts c:
``sum_i sum_k h(k*_i, k) ||w_k - sg(w_k*_i)||^2 = sum_{j,k} c_j H[j, k] ||w_k - sg(w_j)||^2``,
expanded so that it costs O(K^2 D) whatever the batch size, with the exact gradient
``2 sum_j c_j H[j, k] (w_k - w_j)`` for every w_k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from somvq.grids import Grid

from .base import GridQuantizer
from .geometry import NeighbourhoodFunction, _check_real
from .quantizer import _initial_codebook

__all__ = ["GradientKohonenVectorQuantize", "kohonen_loss"]


def kohonen_loss(
    codebook: torch.Tensor,
    hit_counts: torch.Tensor,
    neighbourhood_matrix: torch.Tensor,
    n_rows: int,
) -> torch.Tensor:
    """``mean_i sum_k H[k*_i, k] ||w_k - sg(w_{k*_i})||^2`` from the hit counts.

    ``hit_counts[j]`` is the number of rows won by unit j. The diagonal of H contributes
    nothing (a code's distance to itself), so it is left out to avoid cancellation. The
    expanded form is evaluated around the codebook's (detached) mean: the loss does not
    change under a translation of every code, nor does its gradient, but uncentred, codes
    at an offset of 1e3 cancelled it away in float32 (a loss 500x too large).
    """
    centre = codebook.detach().mean(0)
    codebook = codebook - centre
    anchors = codebook.detach()
    off_diagonal = neighbourhood_matrix * (
        1.0
        - torch.eye(
            neighbourhood_matrix.shape[0],
            dtype=neighbourhood_matrix.dtype,
            device=neighbourhood_matrix.device,
        )
    )
    pair_weights = hit_counts[:, None] * off_diagonal  # [winner j, unit k]
    pull = pair_weights.sum(0)  # sum_j c_j H[j, k]
    targets = pair_weights.t() @ anchors  # sum_j c_j H[j, k] sg(w_j)
    anchor_norms = (anchors * anchors).sum(1)
    total = (
        (pull * (codebook * codebook).sum(1)).sum()
        - 2.0 * (codebook * targets).sum()
        + (pair_weights.sum(1) * anchor_norms).sum()
    )
    return total / n_rows


class GradientKohonenVectorQuantize(GridQuantizer):
    """Vector quantizer with a gradient-trained, grid-organised codebook (GD-SOM).

    Parameters are those of :class:`KohonenVectorQuantize` that concern the map and the
    input layout, plus:

    kohonen_weight : float, default=0.1
        lambda, the weight of the neighbourhood term.

    The codebook is the parameter ``codebook`` (put it in the optimiser); t (``step``)
    advances once per training forward and sets the neighbourhood's shrinking.
    ``forward`` returns ``(quantized, indices, loss)`` with the whole quantizer loss
    (codebook + commitment + neighbourhood terms). Rows holding NaN or +-inf are handled
    as by :class:`KohonenVectorQuantize` (counted in ``n_nonfinite_rows``, left out of the
    loss and the hit counts, output as their code), so no gradient carries them into the
    codebook.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        grid: Grid | Sequence[int] | None = None,
        grid_dim: int = 2,
        neighbourhood: str | NeighbourhoodFunction = "hard",
        shrink: float = 0.1,
        radius: float | None = None,
        commitment_weight: float = 0.25,
        kohonen_weight: float = 0.1,
        channels_first: bool = False,
        *,
        radius_schedule: str = "inverse_time",
        radius_final: float = 0.5,
        radius_horizon: float | None = None,
        init: Any = None,
    ) -> None:
        super().__init__(
            dim,
            codebook_size,
            grid=grid,
            grid_dim=grid_dim,
            neighbourhood=neighbourhood,
            shrink=shrink,
            radius=radius,
            radius_schedule=radius_schedule,
            radius_final=radius_final,
            radius_horizon=radius_horizon,
            commitment_weight=commitment_weight,
            channels_first=channels_first,
        )
        _check_real("kohonen_weight", kohonen_weight, low=0.0)
        self.kohonen_weight = float(kohonen_weight)
        self.codebook = nn.Parameter(_initial_codebook(init, self.codebook_size, self.dim))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize ``z``; returns ``(quantized, indices, loss)`` (see the class doc)."""
        z_last = self._channels_last(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            dtype = self._statistics_dtype()
            rows = z_last.reshape(-1, self.dim).to(dtype)
            codebook = self.codebook.to(dtype)
            with torch.no_grad():
                finite, search_rows = self._finite_rows(rows.detach())
                indices = self._best_matching_units(search_rows, codebook.detach())
                counts = self._hit_counts_into(rows.new_zeros(self.codebook_size), indices, finite)
                self._record_usage(counts, finite.sum())
            codes = F.embedding(indices, codebook)
            # A non-finite row stands for its code: no loss, no gradient, output z_q.
            kept = torch.where(finite[:, None], rows, codes.detach())
            loss = F.mse_loss(codes, kept.detach()) + self.commitment_weight * F.mse_loss(
                kept, codes.detach()
            )
            if not self.map.is_identity and self.kohonen_weight > 0:
                with torch.no_grad():
                    neighbourhood = self.neighbourhood_matrix().to(dtype)
                loss = loss + self.kohonen_weight * kohonen_loss(
                    codebook, counts, neighbourhood, rows.shape[0]
                )
            quantized_rows = kept + (codes - kept).detach()
        if self.training:
            with torch.no_grad():
                self.step.add_(1)
        quantized = self._restore_layout(quantized_rows.to(z.dtype), z_last.shape)
        return quantized, self._index_layout(indices, z_last.shape), loss
