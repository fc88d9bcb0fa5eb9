"""KohonenVectorQuantize: the paper's KSOM-EMA codebook as a drop-in VQ-VAE layer.

The update is docs/algorithms.md §7, (E1)-(E4), run under ``torch.no_grad`` in training
mode only; docs/torch.md gives the forward contract (straight-through output, commitment loss,
no codebook loss, z_q from the codebook *before* this step's update). With
``neighbourhood="none"`` it is exactly EMA-VQ.

Cost per step: one distance GEMM (B' x D x K) and an argmin, the hit counts and sums
accumulated with ``index_add_`` (never a B' x K one-hot, never a B' x K by K x K
product), then the K-sized statistics smoothed with H_t (O(K^2 D)).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from somvq.grids import Grid

from . import distributed
from .base import GridQuantizer
from .geometry import NeighbourhoodFunction, check_ema_arguments

__all__ = ["KohonenVectorQuantize"]

UPDATES = ("all", "written")


class KohonenVectorQuantize(GridQuantizer):
    """Vector quantizer whose codebook is a Kohonen map trained by KSOM-EMA.

    Parameters
    ----------
    dim : int
        Size D of each latent vector (channels).
    codebook_size : int
        Number of codes K (map units).
    grid : tuple of int, somvq.Grid or None, default=None
        Map shape with ``prod(grid) == codebook_size``. ``None``: the reference
        implementation's automatic shape in ``grid_dim`` dimensions (``512 -> (16, 32)``,
        identical unit for unit to the reference's ``[32, 16]``). A :class:`somvq.Grid`
        may be hexagonal or periodic.
    grid_dim : int, default=2
        Number of grid axes when ``grid`` is None.
    neighbourhood : str or callable, default="hard"
        ``"hard"`` (paper): neighbour weight ``1 / (1 + shrink t)`` for the 8 surrounding
        units; ``"exponential"`` (the paper's "Gaussian"): ``exp(-d (1 + shrink t) /
        radius)``; ``"none"``: EMA-VQ; the classic ``"gaussian"``, ``"bubble"``,
        ``"triangle"``, ``"cut_gaussian"``; or ``fn(grid_distances, t) -> weights``
        evaluated on tensors (the diagonal is then forced to 1).
        See :mod:`somvq.neighbourhoods`.
    shrink : float, default=0.1
        The paper's tau.
    radius : float, default=None
        Initial radius r(0): None gives 10 for "exponential" (the paper's sigma), half the
        longest grid side for the classic kernels; unused by "hard" and "none".
    radius_schedule : {"inverse_time", "exponential", "linear", "constant"}
        How the radius shrinks; default the paper's ``radius / (1 + shrink t)``.
    radius_final, radius_horizon : float
        End value and number of steps of the "exponential" and "linear" schedules.
    decay : float, default=0.99
        EMA decay gamma.
    eps : float, default=1e-5
        Laplace smoothing constant of the EMA counts.
    init_count : float, default=1.0
        Initial EMA count N0 of every code (the paper compares 0 and 1).
    commitment_weight : float, default=0.25
        alpha of the commitment loss ``alpha * MSE(z_e, sg(z_q))``.
    update : {"all", "written"}, default="all"
        Decay every code at every step (the paper's), or only codes with a non-zero
        smoothed count (the ablation; no Laplace smoothing).
    channels_first : bool, default=False
        Inputs are ``(batch, dim, *spatial)`` (e.g. ``(B, C, H, W)``) instead of
        ``(..., dim)``; outputs keep the input's layout.
    init : array-like of shape (K, D), default=None
        Initial codebook; None draws it from N(0, I) with torch's global generator.
    sync_statistics : bool, default=True
        Under an initialised torch.distributed process group, all-reduce the batch
        statistics every training step and broadcast the initial state from rank 0.

    Attributes (buffers)
    --------------------
    codebook : (K, D)  ema_count : (K,)  ema_sum : (K, D)  step : () int64
        The state; all in the state_dict. ``step`` is t.
    grid_spec : (2 + 2 ndim,) int64
        The map ``[ndim, *shape, topology, *periodic]``, in the state_dict so that
        ``load_state_dict`` refuses a state trained on another grid of the same size.
    perplexity, used_codes : () tensors
        Of the last forward's batch (this process's finite rows).
    n_nonfinite_rows : () int64
        Rows holding NaN or +-inf seen by ``forward`` since construction (not in the
        state_dict). Such a row is searched with its non-finite entries read as 0, its
        output is that code (z_q, no gradient), and it is left out of the loss and of
        every statistic, so it never reaches the codebook. Nothing synchronises with the
        device: read the counter when convenient (``int(vq.n_nonfinite_rows)``).

    ``load_state_dict`` refuses (RuntimeError naming the entry, nothing copied into this
    module) non-finite codebook or EMA buffers, negative EMA counts, a negative step and a
    state whose ``grid_spec`` differs from this module's map.

    Examples
    --------
    >>> import torch
    >>> from somvq.integrations.torch import KohonenVectorQuantize
    >>> vq = KohonenVectorQuantize(dim=8, codebook_size=16)
    >>> quantized, indices, loss = vq(torch.randn(4, 10, 8))
    >>> quantized.shape, indices.shape, int(vq.step)
    (torch.Size([4, 10, 8]), torch.Size([4, 10]), 1)
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
        decay: float = 0.99,
        eps: float = 1e-5,
        init_count: float = 1.0,
        commitment_weight: float = 0.25,
        update: str = "all",
        channels_first: bool = False,
        *,
        radius_schedule: str = "inverse_time",
        radius_final: float = 0.5,
        radius_horizon: float | None = None,
        init: Any = None,
        sync_statistics: bool = True,
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
        check_ema_arguments(decay, eps, init_count, update, UPDATES)
        self.decay = float(decay)
        self.eps = float(eps)
        self.init_count = float(init_count)
        self.update = update
        self.sync_statistics = bool(sync_statistics)
        codebook = _initial_codebook(init, self.codebook_size, self.dim)
        self.register_buffer("codebook", codebook)
        # The reference's initial state: m0 = w0 whatever N0 is, N0 = init_count.
        self.register_buffer("ema_sum", codebook.clone())
        self.register_buffer("ema_count", torch.full((self.codebook_size,), self.init_count))
        self._state_synchronised = False

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize ``z``; in training mode also apply one KSOM-EMA update.

        Parameters
        ----------
        z : tensor of shape (..., dim), or (batch, dim, *spatial) with channels_first
            Encoder outputs z_e, any floating dtype (fp16/bf16 under autocast welcome).

        Returns
        -------
        quantized : tensor, like ``z``
            ``z_e + sg(z_q - z_e)``: the codes in the forward pass, the identity gradient
            (straight-through) in the backward pass. z_q is read from the codebook as it
            was *before* this step's update (as in the reference).
        indices : int64 tensor, ``z``'s shape without the channel axis
            Best-matching unit of each vector.
        loss : 0-d float32 tensor
            ``commitment_weight * MSE(z_e, sg(z_q))``; the codebook needs no loss.
        """
        z_last = self._channels_last(z)
        if self.training and self.sync_statistics and not self._state_synchronised:
            self.synchronise_state()
        with torch.autocast(device_type=z.device.type, enabled=False):
            dtype = self._statistics_dtype()
            rows = z_last.reshape(-1, self.dim).to(dtype)
            codebook = self.codebook.to(dtype)
            with torch.no_grad():
                finite, search_rows = self._finite_rows(rows.detach())
                indices = self._best_matching_units(search_rows, codebook)
                # z_q is gathered now: the in-place update below does not change it.
                codes = F.embedding(indices, codebook)
                if self.training:
                    self._training_step(search_rows, indices, finite)
                else:
                    counts = rows.new_zeros(self.codebook_size)
                    self._record_usage(self._hit_counts_into(counts, indices, finite), finite.sum())
            # A non-finite row stands for its code: no loss, no gradient, output z_q.
            kept = torch.where(finite[:, None], rows, codes)
            loss = self.commitment_weight * F.mse_loss(kept, codes)
            quantized_rows = kept + (codes - kept).detach()
        quantized = self._restore_layout(quantized_rows.to(z.dtype), z_last.shape)
        return quantized, self._index_layout(indices, z_last.shape), loss

    # ------------------------------------------------------------------ the update
    def _training_step(self, rows: torch.Tensor, indices: torch.Tensor, finite: torch.Tensor) -> None:
        """(E1)-(E4) of docs/algorithms.md §7 for one batch, in place; t <- t + 1.

        ``rows`` are the search rows (non-finite entries read as 0); rows that were not all
        finite (``finite`` False) weigh 0 in the counts and sums.
        """
        n_units, dim = self.codebook_size, self.dim
        # One flat [counts | sums] buffer: one all-reduce per step when distributed.
        statistics = rows.new_zeros(n_units * (1 + dim))
        counts = statistics[:n_units]
        sums = statistics[n_units:].view(n_units, dim)
        weights = finite.to(rows.dtype)
        self._hit_counts_into(counts, indices, weights)
        sums.index_add_(0, indices, rows * weights[:, None])  # exact: x * 1 == x
        self._record_usage(counts, finite.sum())  # this process's rows, before the reduce
        if self.sync_statistics and distributed.is_distributed():
            distributed.all_reduce_statistics(statistics)
        smoothed_counts, smoothed_sums = self._smooth(counts, sums)
        ema_count, ema_sum, codebook = self._ema(smoothed_counts, smoothed_sums, rows.dtype)
        self.ema_count.copy_(ema_count)
        self.ema_sum.copy_(ema_sum)
        self.codebook.copy_(codebook)
        self.step.add_(1)

    def _smooth(self, counts: torch.Tensor, sums: torch.Tensor):
        """n = H_t^T c, s = H_t^T S: the K-sized statistics, never the B' x K one-hot."""
        if self.map.is_identity:
            return counts, sums
        neighbourhood = self.neighbourhood_matrix().to(counts.dtype)
        # H[winner, unit]: (E H)^T 1 = H^T c; H is symmetric for every named kernel.
        return counts @ neighbourhood, neighbourhood.t() @ sums

    def _ema(self, counts: torch.Tensor, sums: torch.Tensor, dtype: torch.dtype):
        """(E1)-(E4): the core's definition, :func:`somvq.algorithms.ema_update`, on tensors."""
        from somvq.algorithms import ema_update

        return ema_update(
            self.ema_count.to(dtype), self.ema_sum.to(dtype), self.codebook.to(dtype), counts, sums,
            decay=self.decay, eps=self.eps, update=self.update,
        )

    # ------------------------------------------------------------------ distributed
    def synchronise_state(self, src: int = 0) -> None:
        """Broadcast codebook, EMA state and step from rank ``src`` (no-op alone).

        Called automatically before the first training step under torch.distributed.
        """
        if distributed.is_distributed():
            distributed.broadcast_tensors(
                [self.codebook, self.ema_count, self.ema_sum, self.step], src=src
            )
        self._state_synchronised = True

    # ------------------------------------------------------------------ interop
    def to_estimator(self, *, batch_size: int = 256, random_state: Any = None):
        """A fitted :class:`somvq.KSOM` (``algorithm="minibatch"``) holding this state.

        The estimator has the same grid, neighbourhood, schedule, decay, eps, init_count
        and update mode, and the codebook, EMA state and step counter, so its
        ``partial_fit`` continues training exactly where this module stands, and the
        core's metrics and plots (``umatrix``, ``topographic_error``...) apply.
        """
        from .interop import quantizer_to_estimator

        return quantizer_to_estimator(self, batch_size=batch_size, random_state=random_state)

    @classmethod
    def from_estimator(cls, som: Any, **overrides: Any) -> "KohonenVectorQuantize":
        """A quantizer initialised from a fitted :class:`somvq.KSOM`.

        Grid, neighbourhood and its schedule, decay, eps, init_count and update come from
        the estimator (``overrides`` replace any constructor argument). A mini-batch map
        also hands over its EMA state and step counter; a batch or online map starts a
        fresh EMA (``m = w``, ``N = init_count``, ``t = 0``) from its codebook.
        """
        from .interop import quantizer_from_estimator

        return quantizer_from_estimator(cls, som, overrides)


def _initial_codebook(init: Any, n_units: int, dim: int) -> torch.Tensor:
    if init is None:
        return torch.randn(n_units, dim)
    codebook = torch.as_tensor(np.asarray(init) if not isinstance(init, torch.Tensor) else init)
    if codebook.shape != (n_units, dim):
        raise ValueError(
            f"init has shape {tuple(codebook.shape)}, expected (codebook_size, dim) = "
            f"({n_units}, {dim})."
        )
    if not codebook.is_floating_point() or not bool(torch.isfinite(codebook).all()):
        raise ValueError("init must be a finite floating-point array.")
    return codebook.detach().to(torch.float32).clone()
