"""What both torch quantizers share: arguments, input layout, BMU search, usage metrics.

:class:`GridQuantizer` is the common base of the KSOM-EMA quantizer
(:mod:`.quantizer`) and the gradient-trained GD-SOM quantizer (:mod:`.gdsom`). It
validates the arguments, owns the map (grid + neighbourhood) and the step counter, turns
``(..., dim)`` or ``(B, dim, *spatial)`` inputs into rows, finds each row's best-matching
unit and records perplexity and the number of used codes.

Non-finite inputs never reach the codebook: a row holding NaN or +-inf is searched with
those entries read as 0, is left out of every statistic (hit counts, sums, usage) and of
the loss, is output as its code, and is counted in the ``n_nonfinite_rows`` buffer, all
with tensor operations (no host synchronisation). ``load_state_dict`` refuses a state
whose buffers are not finite, whose step is negative, or that was trained on another map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from somvq.grids import TOPOLOGIES, Grid

from .geometry import KohonenMap, NeighbourhoodFunction, _check_int, _check_real, resolve_grid

__all__ = ["GridQuantizer"]


class GridQuantizer(nn.Module):
    """Base of the grid-organised quantizers (not used directly)."""

    # Buffers (register_buffer in __init__), declared for type checkers.
    step: torch.Tensor
    perplexity: torch.Tensor
    used_codes: torch.Tensor
    n_nonfinite_rows: torch.Tensor
    grid_spec: torch.Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        grid: Grid | Sequence[int] | None,
        grid_dim: int,
        neighbourhood: str | NeighbourhoodFunction,
        shrink: float,
        radius: float | None,
        radius_schedule: str,
        radius_final: float,
        radius_horizon: float | None,
        commitment_weight: float,
        channels_first: bool,
    ) -> None:
        super().__init__()
        _check_int("dim", dim, low=1)
        _check_int("codebook_size", codebook_size, low=1)
        _check_int("grid_dim", grid_dim, low=1)
        _check_real("commitment_weight", commitment_weight, low=0.0)
        if not isinstance(channels_first, (bool, np.bool_)):
            raise ValueError(f"channels_first={channels_first!r} must be True or False.")
        self.dim = int(dim)
        self.codebook_size = int(codebook_size)
        self.commitment_weight = float(commitment_weight)
        self.channels_first = bool(channels_first)
        self.map = KohonenMap(
            resolve_grid(self.codebook_size, grid, int(grid_dim)),
            neighbourhood,
            shrink=shrink,
            radius=radius,
            radius_schedule=radius_schedule,
            radius_final=radius_final,
            radius_horizon=radius_horizon,
        )
        self.register_buffer(
            "grid_distances",
            torch.from_numpy(np.array(self.map.grid.distances, dtype=np.float32)),
            persistent=False,
        )
        #: t, the number of training updates applied so far.
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        #: Perplexity and number of distinct codes of the last forward's batch.
        self.register_buffer("perplexity", torch.zeros(()), persistent=False)
        self.register_buffer("used_codes", torch.zeros((), dtype=torch.int64), persistent=False)
        #: Rows holding NaN or +-inf seen by forward since construction (this process's
        #: rows, training and eval); they are left out of every statistic.
        self.register_buffer("n_nonfinite_rows", torch.zeros((), dtype=torch.int64), persistent=False)
        #: The map in the state_dict, so that a state trained on another grid with the
        #: same number of codes is refused: [ndim, *shape, topology, *periodic].
        self.register_buffer("grid_spec", _grid_spec(self.map.grid))

    # ------------------------------------------------------------------ properties
    @property
    def grid(self) -> Grid:
        """The map's :class:`~somvq.grids.Grid` (units in C order)."""
        return self.map.grid

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.map.grid.shape

    def neighbourhood_matrix(self, step: Any = None) -> torch.Tensor:
        """H_t as a dense (K, K) tensor, at ``step`` (default: the current step)."""
        t = self.step if step is None else torch.as_tensor(step, device=self.step.device)
        distances = self.grid_distances.to(self._statistics_dtype())
        return self.map.matrix(distances, t.to(distances.dtype))

    def extra_repr(self) -> str:
        kind = self.map.kind
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, grid={self.grid_shape}, "
            f"neighbourhood={kind!r}, shrink={self.map.shrink}, radius={self.map.radius}"
        )

    # ------------------------------------------------------------------ helpers
    #: Buffers of accumulated statistics that stay float32 at least (subclasses name theirs):
    #: ``.half()`` would round them to 11 bits and overflow them beyond 65504 (an EMA sum of
    #: pixel values: an infinite code, silently).
    _STATISTICS: tuple[str, ...] = ()

    def _apply(self, fn, *args, **kwargs):
        # .to()/.double()/.half() would round the grid distances through the old dtype
        # (sqrt(2) in float32, then float64). Rebuild them exactly, in float32 at least,
        # since they set the dtype of the statistics; the statistics themselves are moved
        # from their values before the call, in float32 at least.
        before = {name: getattr(self, name) for name in self._STATISTICS}
        super()._apply(fn, *args, **kwargs)
        for name, old in before.items():
            moved = getattr(self, name)
            dtype = torch.promote_types(moved.dtype, torch.float32)
            if moved.dtype != dtype:
                setattr(self, name, old.to(device=moved.device, dtype=dtype))
        moved = self.grid_distances
        dtype = torch.promote_types(moved.dtype, torch.float32)
        exact = torch.from_numpy(np.array(self.map.grid.distances, dtype=np.float64))
        self.grid_distances = exact.to(device=moved.device, dtype=dtype)
        return self

    def _statistics_dtype(self) -> torch.dtype:
        """float32, or float64 when the module was converted with ``.double()``."""
        return torch.promote_types(self.grid_distances.dtype, torch.float32)

    def _channels_last(self, z: Any) -> torch.Tensor:
        """``z`` as a channels-last tensor ``(..., dim)``, after checking its layout."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(z).__name__}.")
        if not z.is_floating_point():
            raise ValueError(f"expected a floating-point tensor, got dtype {z.dtype}.")
        if self.channels_first:
            if z.ndim < 2:
                raise ValueError(
                    f"channels_first=True expects (batch, dim, *spatial), got shape {tuple(z.shape)}."
                )
            if z.shape[1] != self.dim:
                raise ValueError(
                    f"input has {z.shape[1]} channels in axis 1 (shape {tuple(z.shape)}), "
                    f"expected dim={self.dim}."
                )
            z = z.movedim(1, -1)
        else:
            if z.ndim < 1 or z.shape[-1] != self.dim:
                got = z.shape[-1] if z.ndim else "no"
                raise ValueError(
                    f"input has {got} features in its last axis (shape {tuple(z.shape)}), "
                    f"expected dim={self.dim}; pass channels_first=True for "
                    "(batch, dim, height, width) inputs."
                )
        if z.numel() == 0:
            raise ValueError(f"input of shape {tuple(z.shape)} holds no vectors to quantize.")
        return z

    def _restore_layout(self, rows: torch.Tensor, channels_last_shape: torch.Size) -> torch.Tensor:
        out = rows.reshape(channels_last_shape)
        return out.movedim(-1, 1) if self.channels_first else out

    def _index_layout(self, indices: torch.Tensor, channels_last_shape: torch.Size) -> torch.Tensor:
        return indices.reshape(channels_last_shape[:-1])

    @staticmethod
    def _best_matching_units(rows: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """argmin_k ||x - w_k||^2 per row (lowest index on ties), exact at any offset/scale.

        See :func:`best_matching_units` (the torch twin of :mod:`somvq.distances`).
        """
        return best_matching_units(rows, codebook)

    def _finite_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(finite, search_rows)``: the mask of all-finite rows, and the rows with every
        non-finite entry read as 0 for the BMU search (the same values where finite).

        Counts the non-finite rows into ``n_nonfinite_rows``; tensor operations only, so
        nothing waits for the device.
        """
        # x * 0 is 0 for every finite x and NaN for NaN and +-inf, so a row sums to 0
        # exactly when it is finite: two cheap passes, where isfinite(rows).all(1) builds
        # a B' x D boolean tensor first (several times slower on CPU).
        finite = (rows * 0.0).sum(1) == 0
        self.n_nonfinite_rows.add_(finite.numel() - finite.sum())
        return finite, rows.nan_to_num(0.0, 0.0, 0.0)

    def _hit_counts_into(
        self, counts: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """c = E^T w accumulated into ``counts`` (w: 1, or the finite-row mask ``weights``).

        No bincount: its size would sync a GPU.
        """
        if weights is None:
            weights = torch.ones_like(indices, dtype=counts.dtype)
        return counts.index_add_(0, indices, weights.to(counts.dtype))

    def _record_usage(self, counts: torch.Tensor, n_rows: int | torch.Tensor) -> None:
        """Perplexity exp(-sum p log(p + 1e-10)) and used codes of this batch.

        ``n_rows`` may be a tensor (the number of finite rows; at least 1 is used).
        """
        if isinstance(n_rows, torch.Tensor):
            n_rows = n_rows.clamp_min(1)
        probabilities = counts / n_rows
        self.perplexity = torch.exp(-(probabilities * torch.log(probabilities + 1e-10)).sum())
        self.used_codes = (counts > 0).sum()

    # ------------------------------------------------------------------ loading a state
    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """Refuse an unsound state before copying any of it into this module.

        Raised here, in the format of ``load_state_dict``'s RuntimeError: reported through
        ``error_msgs``, the refusal came only after torch had loaded this module's children
        (``project_in`` / ``project_out``: a NaN weight in, for instance). A state without
        ``grid_spec`` (written before it existed) is accepted as it is.
        """
        problems = self._state_problems(state_dict, prefix)
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(problems)
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        key = prefix + "grid_spec"
        if key not in state_dict and key in missing_keys:
            missing_keys.remove(key)

    def _state_problems(self, state_dict: dict[str, Any], prefix: str) -> list[str]:
        problems = []
        spec = state_dict.get(prefix + "grid_spec")
        if isinstance(spec, torch.Tensor) and not torch.equal(
            spec.detach().cpu().to(torch.int64), self.grid_spec.cpu()
        ):
            problems.append(
                f"{prefix}grid_spec: the state was trained on the map {_describe_spec(spec)}, "
                f"this module has {_describe_spec(self.grid_spec)} (same number of codes, "
                "other grid: its codes would sit at the wrong places)."
            )
        for name, own in self.state_dict(keep_vars=True).items():
            given = state_dict.get(prefix + name)
            if not isinstance(given, torch.Tensor):
                continue
            # torch copies tensor by tensor and reports a size mismatch at the end: refused
            # here, before any copy (a 1-element 1-D tensor for a 0-D one is torch's old form)
            if given.shape != own.shape and not (own.dim() == 0 and given.shape == (1,)):
                problems.append(
                    f"{prefix}{name}: size mismatch, the state has shape {tuple(given.shape)}, this "
                    f"module {tuple(own.shape)}."
                )
                continue
            if given.is_floating_point() and not bool(torch.isfinite(given).all()):
                problems.append(f"{prefix}{name} holds NaN or infinite values; refusing a corrupted state.")
            elif (
                own.is_floating_point()
                and not given.is_complex()
                and not bool(torch.isfinite(given.detach().to(own.dtype)).all())
            ):
                # finite as given, infinite once copied into this module's dtype (a float64
                # state of 1e40 into float32, 1e5 into float16)
                problems.append(
                    f"{prefix}{name} holds values beyond {own.dtype}'s range (largest magnitude "
                    f"{float(given.detach().abs().max()):.4g}); they would load as infinite."
                )
            elif name == "step":
                if (
                    given.numel() != 1
                    or given.is_floating_point()
                    or given.is_complex()
                    or given.dtype == torch.bool
                ):
                    problems.append(
                        f"{prefix}step must be one integer, got {given.dtype} of shape {tuple(given.shape)}."
                    )
                elif int(given.reshape(())) < 0:
                    problems.append(
                        f"{prefix}step={int(given.reshape(()))} is negative; it counts the training updates."
                    )
            if name == "ema_count" and given.is_floating_point() and bool((given < 0).any()):
                problems.append(f"{prefix}ema_count holds negative counts (min {float(given.min())}).")
        return problems


def _grid_spec(grid: Grid) -> torch.Tensor:
    """``[ndim, *shape, topology index, *periodic]`` of ``grid`` as an int64 tensor."""
    values = [grid.ndim, *grid.shape, TOPOLOGIES.index(grid.topology), *(int(p) for p in grid.periodic)]
    return torch.tensor(values, dtype=torch.int64)


def _describe_spec(spec: torch.Tensor) -> str:
    """``Grid(...)``-like text of a stored grid_spec (or the raw values if malformed)."""
    values = [int(v) for v in spec.detach().cpu().reshape(-1).tolist()]
    ndim = values[0] if values else -1
    if ndim < 1 or len(values) != 2 + 2 * ndim or not 0 <= values[1 + ndim] < len(TOPOLOGIES):
        return f"grid_spec={values}"
    shape = tuple(values[1 : 1 + ndim])
    periodic = tuple(bool(p) for p in values[2 + ndim :])
    return f"grid {shape} {TOPOLOGIES[values[1 + ndim]]}, periodic={periodic}"


#: Candidates per row that :func:`best_matching_units` re-ranks exactly.
RERANK_CANDIDATES = 8

#: Largest codebook radius used unscaled (as ``somvq.distances.choose_scale``).
_UNSCALED_RANGE = {torch.float32: 2.0**30, torch.float64: 2.0**250}


def reference_frame(codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centre, scale)`` of :func:`somvq.distances.reference_frame`, as tensors (no sync).

    Centre: the codebook mean when its squared norm exceeds the codebook's mean squared
    radius around it, else the origin (chosen with ``torch.where``, not a Python branch).
    Scale: ``2^-e`` (``2^e <= R < 2^(e+1)``, R the largest centred norm, or
    ``sqrt(D) max |w_kj - c_j|`` where the squared norms overflow or underflow to 0) when R
    lies outside
    ``[1/r, r]``, else 1.
    """
    w64 = codebook.detach().to(torch.float64)
    mean = w64.mean(0)
    offset = (mean * mean).sum()
    spread = (w64 * w64).sum(1).mean() - offset
    centre = torch.where(offset > spread, mean, torch.zeros_like(mean)).to(codebook.dtype)
    framed = (codebook.detach() - centre).to(torch.float64)
    radius = (framed * framed).sum(1).max().sqrt()
    # float64 codebooks beyond ~1e154 (the squares overflow) or spread below ~1e-162 (they
    # underflow to 0): bound from max |w_kj - c_j|, as the core's frame does
    bound = framed.abs().max() * math.sqrt(framed.shape[1])
    radius = torch.where(torch.isfinite(radius) & (radius > 0), radius, bound)
    limit = _UNSCALED_RANGE.get(codebook.dtype, 2.0**30)
    # somvq.distances.power_of_two_scale: 2^(1 - e), at most the dtype's largest power of two
    # (a subnormal radius)
    exponent = (1 - torch.frexp(radius)[1]).clamp(max=math.frexp(torch.finfo(codebook.dtype).max)[1] - 1)
    power = torch.ldexp(torch.ones_like(radius), exponent)
    outside = (radius > 0) & ((radius > limit) | (radius < 1.0 / limit))
    scale = torch.where(outside, power, torch.ones_like(radius))
    return centre, scale


def best_matching_units(rows: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of each row's best-matching unit: the float64 argmin, lowest index on ties.

    The torch twin of :mod:`somvq.distances` (tested against it): the expanded form
    ``||w'||^2 - 2 x'.w'`` in the rows' dtype, in the codebook's :func:`reference_frame`
    (centred, power-of-two scaled), picks the ``RERANK_CANDIDATES`` (8) best units of each
    row; those are re-ranked by direct float64 distances ``sum_j (x_j - w_j)^2`` (the
    differences times the frame's power-of-two scale, so that a float64 codebook beyond
    ~1e154 or below ~1e-162 still compares finite, non-zero squares). The result
    is the exact argmin whenever the true winner is among the 8: always unless more than
    7 other units lie within the expanded form's error bound of it
    (``somvq.distances.expanded_form_error``: ~1e-6 (D + 4) of ``(||x'|| + R)^2`` in
    float32), i.e. near-duplicate codes. With more than 8 exactly equal codes (unused codes
    of an EMA-VQ decayed to the same vector, or sampled from repeated rows) the index is
    one of them, not always the lowest (``KSOM.predict`` gives the lowest); the code vector,
    and so the quantized output, is the same. No host synchronisation: every step is a
    tensor operation of fixed shape.
    """
    n_units = codebook.shape[0]
    centre, scale64 = reference_frame(codebook)
    scale = scale64.to(rows.dtype)
    framed_rows = (rows - centre) * scale
    framed_codes = (codebook - centre) * scale
    squared_norms = (framed_codes * framed_codes).sum(1)
    scores = torch.addmm(squared_norms, framed_rows, framed_codes.t(), beta=1.0, alpha=-2.0)
    n_candidates = min(RERANK_CANDIDATES, n_units)
    candidates = scores.topk(n_candidates, dim=1, largest=False).indices
    rows64 = rows.to(torch.float64)
    codes64 = codebook.to(torch.float64)
    # the differences times the frame's scale (an exact power of two), so that the squares of
    # a codebook beyond ~1e154 stay finite and those below ~1e-162 do not underflow to ties;
    # a row whose scaled squares overflow (far outside a tiny codebook) compares them unscaled
    diffs = [rows64 - codes64[candidates[:, m]] for m in range(n_candidates)]
    scaled = torch.stack([((d * scale64) ** 2).sum(1) for d in diffs], dim=1)
    plain = torch.stack([(d * d).sum(1) for d in diffs], dim=1)
    exact = torch.where(torch.isfinite(scaled).all(1, keepdim=True), scaled, plain)
    best = exact.min(1, keepdim=True).values
    winner = torch.where(exact == best, candidates, n_units).min(1).values
    # a row without a comparable candidate (NaN input) keeps the expanded form's best
    return torch.where(winner < n_units, winner, candidates[:, 0])
