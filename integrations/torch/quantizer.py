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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from somvq.grids import Grid
from somvq.initialisation import initial_codebook

from . import distributed
from .base import GridQuantizer
from .geometry import NeighbourhoodFunction, _check_int, check_ema_arguments

__all__ = ["KohonenVectorQuantize"]

UPDATES = ("all", "written")
DISTANCES = ("euclidean", "cosine")
DATA_INITS = ("kmeans", "pca", "sample")


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
    init : array-like of shape (K, codebook_dim), {"kmeans", "pca", "sample"} or None
        Initial codebook; None draws it from N(0, I) with torch's global generator. A
        name initialises from the first training batch (see :meth:`init_from`): rank 0
        computes it, it is broadcast; until then the codebook is an N(0, I) placeholder.
    sync_statistics : bool, default=True
        Under an initialised torch.distributed process group, all-reduce the batch
        statistics every training step and broadcast the initial state from rank 0.
    codebook_dim : int, default=None
        Size of the codes when lower than ``dim``: ``project_in = nn.Linear(dim,
        codebook_dim)`` maps the inputs into the codebook space, where the search, the
        commitment loss, the straight-through estimator and the KSOM-EMA update happen,
        and ``project_out = nn.Linear(codebook_dim, dim)`` maps the output back (both
        learned: give ``vq.parameters()`` to the optimiser). None or ``dim``: none.
    distance : {"euclidean", "cosine"}, default="euclidean"
        "cosine": rows (after ``project_in``) and codes are l2-normalised; the BMU is the
        most similar code, the statistics are those of the unit rows, and after (E4) each
        code is divided by its length (``w = (m / N) / ||m / N||``; ``m`` and ``N`` are
        kept as they are). Rows of norm 0 have no direction: they are left out like
        non-finite rows (counted in ``n_zero_rows``).
    usage_window : int, default=100
        Number of training batches over which ``code_usage`` and ``dead_codes`` count.
    kmeans_iters : int, default=10
        Lloyd iterations of ``init="kmeans"``.

    Attributes
    ----------
    codebook : (K, D)  ema_count : (K,)  ema_sum : (K, D)  step : () int64
        The state; all in the state_dict. ``step`` is t.
    grid_spec : (2 + 2 ndim,) int64
        The map ``[ndim, *shape, topology, *periodic]``, in the state_dict so that
        ``load_state_dict`` refuses a state trained on another grid of the same size.
    perplexity, used_codes : () tensors
        Of the last forward's batch (this process's finite rows).
    code_usage : (K,), dead_codes : () int64, usage_perplexity : ()
        Selections of each code over the last ``usage_window`` training batches (all
        processes' rows), the number of codes never selected in them, and the perplexity
        of those frequencies; updated by each training step with tensor operations only
        (no host sync). Kept in ``usage_ring`` (usage_window, K), in the state_dict.
        :meth:`metrics` returns all of them as a dict.
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

    _STATISTICS = ("ema_sum", "ema_count", "usage_ring")

    # Buffers (register_buffer in __init__) and optional projections, for type checkers.
    codebook: torch.Tensor
    ema_sum: torch.Tensor
    ema_count: torch.Tensor
    usage_ring: torch.Tensor
    code_usage: torch.Tensor
    dead_codes: torch.Tensor
    usage_perplexity: torch.Tensor
    n_zero_rows: torch.Tensor
    project_in: nn.Linear | None
    project_out: nn.Linear | None

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
        codebook_dim: int | None = None,
        distance: str = "euclidean",
        usage_window: int = 100,
        kmeans_iters: int = 10,
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
        if distance not in DISTANCES:
            raise ValueError(f"distance={distance!r} is not one of {DISTANCES}.")
        _check_int("usage_window", usage_window, low=1)
        _check_int("kmeans_iters", kmeans_iters, low=0)
        if codebook_dim is not None:
            _check_int("codebook_dim", codebook_dim, low=1)
            if codebook_dim > self.dim:
                raise ValueError(
                    f"codebook_dim={codebook_dim} is larger than dim={self.dim}: the projection "
                    "is meant to lower the codebook's dimension (use codebook_dim <= dim)."
                )
        self.decay = float(decay)
        self.eps = float(eps)
        self.init_count = float(init_count)
        self.update = update
        self.sync_statistics = bool(sync_statistics)
        self.distance = distance
        self.cosine = distance == "cosine"
        self.usage_window = int(usage_window)
        self.kmeans_iters = int(kmeans_iters)
        #: Size of the codes: ``codebook_dim``, or ``dim`` when there is no projection.
        self.codebook_dim = self.dim if codebook_dim is None else int(codebook_dim)
        if self.codebook_dim != self.dim:
            # As vector-quantize-pytorch: learned projections into and out of the codebook
            # space (give vq.parameters() to the optimiser). codebook_dim == dim: none.
            self.project_in = nn.Linear(self.dim, self.codebook_dim)
            self.project_out = nn.Linear(self.codebook_dim, self.dim)
        else:
            self.project_in = self.project_out = None
        #: The data-dependent initialisation still to run ("kmeans", "pca", "sample") or None.
        self.data_init = init if isinstance(init, str) else None
        if self.data_init is not None and self.data_init not in DATA_INITS:
            raise ValueError(
                f"init={init!r} is not one of {DATA_INITS}, None or a (codebook_size, codebook_dim) array."
            )
        codebook = _initial_codebook(None if self.data_init else init, self.codebook_size, self.codebook_dim)
        if self.cosine:
            codebook = _unit_rows(codebook, "init")
        self.register_buffer("codebook", codebook)
        # The reference's initial state: m0 = w0 whatever N0 is, N0 = init_count.
        self.register_buffer("ema_sum", codebook.clone())
        self.register_buffer("ema_count", torch.full((self.codebook_size,), self.init_count))
        #: Hit counts (after the all-reduce) of the last ``usage_window`` training batches,
        #: one row per batch, row ``t % usage_window`` written at step t (in the state_dict;
        #: a state saved without it loads with an empty window).
        self.register_buffer("usage_ring", torch.zeros(self.usage_window, self.codebook_size))
        #: Selections of each code over the window, codes never selected in it, and the
        #: perplexity of the window's selection frequencies (updated each training step).
        self.register_buffer("code_usage", torch.zeros(self.codebook_size), persistent=False)
        self.register_buffer("dead_codes", torch.tensor(self.codebook_size), persistent=False)
        self.register_buffer("usage_perplexity", torch.zeros(()), persistent=False)
        #: Rows of norm 0 seen by forward with distance="cosine" (left out like non-finite rows).
        self.register_buffer("n_zero_rows", torch.zeros((), dtype=torch.int64), persistent=False)
        self._state_synchronised = False

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Quantize ``z``; in training mode also apply one KSOM-EMA update.

        Parameters
        ----------
        z : tensor of shape (..., dim), or (batch, dim, \*spatial) with channels_first
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
        if self.training and self.data_init is not None:
            self.init_from(z)
        if self.training and self.sync_statistics and not self._state_synchronised:
            self.synchronise_state()
        flat = z_last.reshape(-1, self.dim)
        if self.project_in is not None:
            flat = self._project_finite(flat, z.device.type)
        with torch.autocast(device_type=z.device.type, enabled=False):
            dtype = self._statistics_dtype()
            rows = flat.to(dtype)
            codebook = self.codebook.to(dtype)
            with torch.no_grad():
                finite, search_rows = self._finite_rows(rows.detach())
                if self.cosine:
                    valid, search_rows = self._unit_search_rows(search_rows, finite)
                else:
                    valid = finite
                indices = self._best_matching_units(search_rows, codebook)
                # z_q is gathered now: the in-place update below does not change it.
                codes = F.embedding(indices, codebook)
                if self.training:
                    self._training_step(search_rows, indices, valid)
                else:
                    counts = rows.new_zeros(self.codebook_size)
                    self._record_usage(self._hit_counts_into(counts, indices, valid), valid.sum())
            if self.cosine:
                # Normalised with a gradient; rows left out (non-finite, zero) are replaced
                # by ones first, so that no NaN reaches their (zero) gradient.
                rows = _directions(torch.where(valid[:, None], rows, torch.ones_like(rows)))[0]
            # A non-finite row stands for its code: no loss, no gradient, output z_q.
            kept = torch.where(valid[:, None], rows, codes)
            loss = self.commitment_weight * F.mse_loss(kept, codes)
            quantized_rows = kept + (codes - kept).detach()
        if self.project_out is not None:
            quantized_rows = self._project(self.project_out, quantized_rows, z.device.type)
        quantized = self._restore_layout(quantized_rows.to(z.dtype), z_last.shape)
        return quantized, self._index_layout(indices, z_last.shape), loss

    # ------------------------------------------------------------------ the update
    def _training_step(self, rows: torch.Tensor, indices: torch.Tensor, finite: torch.Tensor) -> None:
        """(E1)-(E4) of docs/algorithms.md §7 for one batch, in place; t <- t + 1.

        ``rows`` are the search rows (non-finite entries read as 0); rows that were not all
        finite (``finite`` False) weigh 0 in the counts and sums.
        """
        n_units, dim = self.codebook_size, self.codebook_dim
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
        self._record_window(counts)
        smoothed_counts, smoothed_sums = self._smooth(counts, sums)
        ema_count, ema_sum, codebook = self._ema(smoothed_counts, smoothed_sums, rows.dtype)
        if self.cosine:
            # w = (m / N) / ||m / N||: the EMA state is kept as it is, the codes are unit.
            codebook = _directions(codebook)[0]
        self.ema_count.copy_(ema_count)
        self.ema_sum.copy_(ema_sum)
        self.codebook.copy_(codebook)
        self.step.add_(1)

    def _smooth(self, counts: torch.Tensor, sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """n = H_t^T c, s = H_t^T S: the K-sized statistics, never the B' x K one-hot."""
        if self.map.is_identity:
            return counts, sums
        neighbourhood = self.neighbourhood_matrix().to(counts.dtype)
        # H[winner, unit]: (E H)^T 1 = H^T c; H is symmetric for every named kernel.
        return counts @ neighbourhood, neighbourhood.t() @ sums

    def _ema(
        self, counts: torch.Tensor, sums: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(E1)-(E4): the core's definition, :func:`somvq.algorithms.ema_update`, on tensors."""
        from somvq.algorithms import ema_update

        updated: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = ema_update(
            self.ema_count.to(dtype),
            self.ema_sum.to(dtype),
            self.codebook.to(dtype),
            counts,
            sums,
            decay=self.decay,
            eps=self.eps,
            update=self.update,
        )
        return updated

    # ------------------------------------------------------------------ helpers
    def _project_finite(self, rows: torch.Tensor, device_type: str) -> torch.Tensor:
        """``project_in(rows)``, with the rows that are not all finite projected as 0 and
        then set to NaN (no gradient): they stay non-finite for the search, and no NaN
        reaches ``project_in``'s weight gradient (``grad_out^T @ rows``: 0 x NaN is NaN)."""
        assert self.project_in is not None
        ok = torch.isfinite(rows).all(1, keepdim=True)
        projected = self._project(self.project_in, torch.where(ok, rows, torch.zeros_like(rows)), device_type)
        return torch.where(ok, projected, torch.full_like(projected, float("nan")))

    @staticmethod
    def _project(linear: nn.Linear, rows: torch.Tensor, device_type: str) -> torch.Tensor:
        """``linear(rows)``; outside autocast the rows are cast to the layer's dtype first."""
        if not torch.is_autocast_enabled(device_type):
            rows = rows.to(linear.weight.dtype)
        projected: torch.Tensor = linear(rows)
        return projected

    def _unit_search_rows(
        self, search_rows: torch.Tensor, finite: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(valid, unit rows)`` for distance="cosine": rows of norm 0 are not valid
        (left out like non-finite rows, counted in ``n_zero_rows``) and stay 0."""
        unit, nonzero = _directions(search_rows)
        self.n_zero_rows.add_((finite & ~nonzero).sum())
        return finite & nonzero, unit

    def _record_window(self, counts: torch.Tensor) -> None:
        """Write this step's hit counts into row ``t % usage_window`` of the ring; update
        ``code_usage``, ``dead_codes`` and ``usage_perplexity`` (tensor ops, no sync)."""
        slot = torch.remainder(self.step, self.usage_window).reshape(1)
        self.usage_ring.index_copy_(0, slot, counts.to(self.usage_ring.dtype)[None])
        self._usage_figures()

    def _usage_figures(self) -> None:
        """``code_usage``, ``dead_codes`` and ``usage_perplexity`` from ``usage_ring``."""
        usage = self.usage_ring.sum(0)
        self.code_usage = usage
        self.dead_codes = (usage == 0).sum()
        probabilities = usage / usage.sum().clamp_min(1)
        self.usage_perplexity = torch.exp(-(probabilities * torch.log(probabilities + 1e-10)).sum())

    def metrics(self) -> dict[str, torch.Tensor]:
        """The usage figures as 0-d (``code_usage``: (K,)) tensors, without a host sync.

        ``perplexity``, ``used_codes``: of the last forward's batch (this process's rows);
        ``code_usage``: selections of each code over the last ``usage_window`` training
        batches (all processes' rows); ``dead_codes``: codes with no selection in that
        window; ``usage_perplexity``: the perplexity of the window's frequencies;
        ``n_nonfinite_rows``, ``n_zero_rows``: rows left out since construction.
        """
        return {
            "perplexity": self.perplexity,
            "used_codes": self.used_codes,
            "dead_codes": self.dead_codes,
            "usage_perplexity": self.usage_perplexity,
            "code_usage": self.code_usage,
            "n_nonfinite_rows": self.n_nonfinite_rows,
            "n_zero_rows": self.n_zero_rows,
        }

    # ------------------------------------------------------------------ data-dependent init
    @torch.no_grad()
    def init_from(self, z: torch.Tensor, method: str | None = None) -> None:
        """Initialise the codebook from data ``z`` (laid out as ``forward``'s input).

        The rows are projected (``codebook_dim``) and normalised (``distance="cosine"``)
        as in ``forward``; only valid rows (finite, non-zero for cosine) are used. Rank 0
        computes the codebook, which is broadcast under torch.distributed (call on every
        rank). The EMA restarts from it as at construction: ``m = w``, ``N = init_count``
        (``t`` is left as it is).

        Parameters
        ----------
        z : tensor
            Data, ``(..., dim)`` (or ``(batch, dim, *spatial)`` with channels_first).
        method : {"kmeans", "pca", "sample"}, optional
            Default: the ``init`` given to the constructor, else "kmeans".
        """
        method = method or self.data_init or "kmeans"
        if method not in DATA_INITS:
            raise ValueError(f"method={method!r} is not one of {DATA_INITS}.")
        z_last = self._channels_last(z)
        flat = z_last.reshape(-1, self.dim)
        if self.project_in is not None:
            flat = self.project_in(flat.to(self.project_in.weight.dtype))
        rows = flat.to(self._statistics_dtype())
        status = torch.zeros(3, dtype=torch.int64, device=self.codebook.device)
        rank0 = distributed.rank() == 0
        if rank0:
            finite = torch.isfinite(rows).all(1)
            if self.cosine:
                finite &= _directions(torch.where(finite[:, None], rows, 0.0))[1]
            valid = rows[finite]
            needed = 2 if method == "pca" else self.codebook_size
            status[:] = torch.tensor([int(valid.shape[0] < needed), valid.shape[0], rows.shape[0]])
        if distributed.is_distributed():
            distributed.broadcast_tensors([status])
        if int(status[0]):
            what = "finite, non-zero" if self.cosine else "finite"
            needed_text = "2" if method == "pca" else f"codebook_size={self.codebook_size}"
            raise ValueError(
                f"init={method!r} needs at least {needed_text} {what} rows on rank 0, got "
                f"{int(status[1])} of {int(status[2])} rows."
            )
        if rank0:
            codebook = self._data_codebook(valid, method)
            self.codebook.copy_(codebook)
            self.ema_sum.copy_(codebook)
            self.ema_count.fill_(self.init_count)
        if distributed.is_distributed():
            distributed.broadcast_tensors([self.codebook, self.ema_sum, self.ema_count])
        self.data_init = None

    def _data_codebook(self, rows: torch.Tensor, method: str) -> torch.Tensor:
        """The (K, codebook_dim) codebook from valid rows, on rank 0."""
        if self.cosine:
            rows = _directions(rows)[0]
        # Draws from torch's global generator (torch.manual_seed makes it reproducible).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        core_method = "pca" if method == "pca" else "sample"
        start = initial_codebook(core_method, rows.detach().cpu().double().numpy(), self.grid, rng)
        codebook = torch.from_numpy(start).to(rows)
        if method == "kmeans":
            for _ in range(self.kmeans_iters):  # Lloyd; an empty cluster keeps its centre
                nearest = self._best_matching_units(rows, codebook)
                counts = rows.new_zeros(self.codebook_size).index_add_(
                    0, nearest, torch.ones_like(rows[:, 0])
                )
                sums = rows.new_zeros(codebook.shape).index_add_(0, nearest, rows)
                codebook = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], codebook)
                if self.cosine:
                    codebook = _unit_rows(codebook, None)
        if self.cosine:
            codebook = _unit_rows(codebook, None)
        return codebook.to(self.codebook)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """As the base's; a state without ``usage_ring``, or with the ring of another
        ``usage_window`` (a monitoring option), loads with an empty window, and a loaded
        state cancels a pending data-dependent initialisation."""
        ring = state_dict.get(prefix + "usage_ring")
        if isinstance(ring, torch.Tensor) and ring.shape != self.usage_ring.shape:
            del state_dict[prefix + "usage_ring"]
        n_errors = len(error_msgs)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        key = prefix + "usage_ring"
        if key not in state_dict and key in missing_keys:
            missing_keys.remove(key)
            self.usage_ring.zero_()
        if len(error_msgs) == n_errors:
            self.data_init = None
            with torch.no_grad():
                if prefix + "codebook" in state_dict and not any(
                    prefix + name in state_dict for name in ("ema_sum", "ema_count")
                ):
                    # a codebook alone (strict=False, a GD-SOM state): the EMA restarts from
                    # it, as at construction (m0 = w0, N0 = init_count); the old m / N would
                    # replace it at the next step
                    self.ema_sum.copy_(self.codebook)
                    self.ema_count.fill_(self.init_count)
                self._usage_figures()

    # ------------------------------------------------------------------ distributed
    def synchronise_state(self, src: int = 0) -> None:
        """Broadcast codebook, EMA state and step from rank ``src`` (no-op alone).

        Called automatically before the first training step under torch.distributed.
        """
        if distributed.is_distributed():
            distributed.broadcast_tensors([self.codebook, self.ema_count, self.ema_sum, self.step], src=src)
        self._state_synchronised = True

    # ------------------------------------------------------------------ interop
    def to_estimator(self, *, batch_size: int = 256, random_state: Any = None) -> Any:
        """A fitted :class:`somvq.KSOM` (``algorithm="minibatch"``) holding this state.

        The estimator has the same grid, neighbourhood, schedule, decay, eps, init_count
        and update mode, and the codebook, EMA state and step counter, so its
        ``partial_fit`` continues training exactly where this module stands, and the
        core's metrics and plots (``umatrix``, ``topographic_error``...) apply.
        """
        from .interop import quantizer_to_estimator

        return quantizer_to_estimator(self, batch_size=batch_size, random_state=random_state)

    @classmethod
    def from_estimator(cls, som: Any, **overrides: Any) -> KohonenVectorQuantize:
        """A quantizer initialised from a fitted :class:`somvq.KSOM`.

        Grid, neighbourhood and its schedule, decay, eps, init_count and update come from
        the estimator (``overrides`` replace any constructor argument). A mini-batch map
        also hands over its EMA state and step counter; a batch or online map starts a
        fresh EMA (``m = w``, ``N = init_count``, ``t = 0``) from its codebook, with this
        class's default decay (0.99) unless the map was given a number (its ``"auto"``
        describes a fit that used no EMA).
        """
        from .interop import quantizer_from_estimator

        quantizer: KohonenVectorQuantize = quantizer_from_estimator(cls, som, overrides)
        return quantizer


def _directions(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows / ||rows||, nonzero)`` row by row, safe at the dtype's limits.

    Each row is divided by its largest magnitude first, so that its squared norm neither
    overflows (entries of 1e20 in float32) nor vanishes (entries of 1e-25): cosine ignores
    scale, and every non-zero row keeps its direction. A zero row stays zero (``nonzero``
    False). The divisor carries no gradient; the direction does not depend on it. Rows
    must be finite.
    """
    largest = rows.detach().abs().amax(dim=-1, keepdim=True)
    nonzero = largest > 0
    scaled = rows / torch.where(nonzero, largest, torch.ones_like(largest))
    norms = torch.linalg.vector_norm(scaled, dim=-1, keepdim=True)
    return scaled / torch.where(nonzero, norms, torch.ones_like(norms)), nonzero[..., 0]


def _unit_rows(codebook: torch.Tensor, name: str | None) -> torch.Tensor:
    """Rows divided by their norm; a zero row is an error when ``name`` is given (else kept)."""
    unit, nonzero = _directions(codebook)
    if name is not None and not bool(nonzero.all()):
        raise ValueError(f"{name} holds a zero row, which has no direction for distance='cosine'.")
    return unit


def _initial_codebook(init: Any, n_units: int, dim: int) -> torch.Tensor:
    if init is None:
        return torch.randn(n_units, dim)
    codebook = torch.as_tensor(np.asarray(init) if not isinstance(init, torch.Tensor) else init)
    if codebook.shape != (n_units, dim):
        raise ValueError(
            f"init has shape {tuple(codebook.shape)}, expected (codebook_size, codebook_dim) = "
            f"({n_units}, {dim})."
        )
    if not codebook.is_floating_point() or not bool(torch.isfinite(codebook).all()):
        raise ValueError("init must be a finite floating-point array.")
    return codebook.detach().to(torch.float32).clone()
