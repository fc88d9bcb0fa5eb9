"""Input scaling chosen at ``somvq fit`` (--standardize / --minmax), kept in the model file.

The map is trained on ``(X - offset) / scale``; predict, transform, evaluate and plot read
the same offset and scale from the model file (``somvq.io`` ``extra`` data), so a model is
always applied to data scaled as its training data was. Plots of the codebook map it back
to the data's original units with :meth:`Scaling.inverse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import DataError

METHODS = ("none", "standardize", "minmax")


@dataclass
class Scaling:
    """A per-feature affine map; ``method="none"`` is the identity."""

    method: str = "none"
    offset: Any = None  # ndarray (n_features,) float64
    scale: Any = None  # ndarray (n_features,) float64, never 0

    @classmethod
    def fit(cls, method: str, X: Any) -> Scaling:
        """Per-feature mean/std (standardize) or min/range (minmax) of ``X``.

        Constant features get scale 1, so they map to 0 instead of dividing by zero.
        """
        import numpy as np

        from somvq._moments import column_moments

        if method == "none":
            return cls()
        if method not in METHODS:
            raise ValueError(f"scaling method {method!r} is not one of {METHODS}.")
        nan = bool(np.isnan(X).any())  # missing values: statistics of the observed entries
        with np.errstate(over="ignore", invalid="ignore"):
            if method == "standardize":
                offset, scale = column_moments(X, nan=nan)
            else:
                offset = (np.nanmin if nan else np.min)(X, axis=0).astype(np.float64)
                scale = (np.nanmax if nan else np.max)(X, axis=0).astype(np.float64) - offset
        wide = np.flatnonzero(~np.isfinite(scale) & ~np.isnan(offset))
        if wide.size:
            raise DataError(
                f"--minmax: column {int(wide[0]) + 1} spans more than float64 holds (from "
                f"{offset[wide[0]]:.3g}); use --standardize."
            )
        scale[~(scale > 0)] = 1.0
        return cls(method, np.nan_to_num(offset), scale)

    def apply(self, X: Any) -> Any:
        """``(X - offset) / scale`` in ``X``'s dtype."""
        if self.method == "none":
            return X
        return ((X - self.offset) / self.scale).astype(X.dtype, copy=False)

    def inverse(self, Y: Any) -> Any:
        """Back to the original units (float64)."""
        import numpy as np

        if self.method == "none":
            return np.asarray(Y, dtype=np.float64)
        return np.asarray(Y, dtype=np.float64) * self.scale + self.offset

    def to_extra(self) -> dict[str, Any]:
        if self.method == "none":
            return {"scaling": "none"}
        return {"scaling": self.method, "scaling_offset": self.offset, "scaling_scale": self.scale}

    @classmethod
    def from_extra(cls, extra: dict[str, Any], n_features: int, source: str) -> Scaling:
        """The scaling stored in a model file's extra data (none when absent).

        Raises ValueError when the stored data is inconsistent.
        """
        import numpy as np

        method = extra.get("scaling", "none")
        if method == "none":
            return cls()
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(f"{source}: the model file is corrupted: unknown input scaling {method!r}.")
        stored = [extra.get("scaling_offset"), extra.get("scaling_scale")]
        for value in stored:  # real numbers only: no text, dicts, complex or dates to convert
            numbers = (
                value.dtype.kind in "biuf"
                if isinstance(value, np.ndarray)
                else isinstance(value, list)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            )
            if not numbers:
                raise ValueError(
                    f"{source}: the model file is corrupted: its input scaling is not one real number "
                    f"per feature ({n_features})."
                )
        offset, scale = (np.asarray(value, dtype=np.float64) for value in stored)
        if offset.shape != (n_features,) or scale.shape != (n_features,):
            raise ValueError(
                f"{source}: the model file is corrupted: the stored input scaling does not match the {n_features} features."
            )
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale)) and np.all(scale != 0)):
            raise ValueError(
                f"{source}: the model file is corrupted: the stored input scaling holds NaN, inf or a zero scale."
            )
        return cls(method, offset, scale)
