"""Loading a model file for the commands that apply one, with its input scaling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import DataError, library_errors
from ._scaling import Scaling


@dataclass
class LoadedModel:
    som: Any  # fitted somvq.KSOM
    path: str
    scaling: Scaling
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str] | None:
        names = self.extra.get("feature_names")
        return [str(n) for n in names] if isinstance(names, list) else None

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        shape = self.extra.get("image_shape")
        return tuple(int(s) for s in shape) if isinstance(shape, list) else None

    def prepare(self, data: Any) -> Any:
        """Check the feature count of ``data`` (an InputData) and apply the model's scaling."""
        expected = int(self.som.n_features_in_)
        got = data.X.shape[1]
        if got != expected:
            raise DataError(
                f"feature-count mismatch: {self.path} was fitted on {expected} features, "
                f"{data.source} has {got}; select columns with --columns."
            )
        return self.scaling.apply(data.X)


def load_model(path: str) -> LoadedModel:
    """Read a model file; a corrupted or foreign file is a data error (exit 1)."""
    from somvq.io import load, read_extra

    with library_errors():
        som = load(path)
        extra = read_extra(path)
        scaling = Scaling.from_extra(extra, int(som.n_features_in_), path)
    return LoadedModel(som=som, path=path, scaling=scaling, extra=extra)
