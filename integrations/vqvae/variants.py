"""The study's quantiser variants: names, labels and parsing.

A variant is ``{neighbourhood}-n{init_count}-{update}``: neighbourhood ``none`` (EMA-VQ),
``hard`` or ``exponential`` (the paper's KSOM kernels), initial EMA count 0 or 1, update of
all codes or of the written ones only. :data:`ALL_VARIANTS` are the 12 combinations; every
one uses :class:`~somvq.integrations.torch.KohonenVectorQuantize`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = ["NEIGHBOURHOODS", "LABELS", "Variant", "ALL_VARIANTS", "parse_variants"]

NEIGHBOURHOODS = ("none", "hard", "exponential")
#: How the report and the figures name each neighbourhood.
LABELS = {"none": "EMA-VQ", "hard": "KSOM hard", "exponential": "KSOM exponential"}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One quantiser configuration of the study."""

    neighbourhood: str
    init_count: int
    update: str

    @property
    def name(self) -> str:
        return f"{self.neighbourhood}-n{self.init_count}-{self.update}"

    @property
    def label(self) -> str:
        return f"{LABELS[self.neighbourhood]}, N0={self.init_count}, update {self.update}"

    @classmethod
    def parse(cls, name: str) -> Variant:
        parts = name.strip().split("-")
        if (
            len(parts) != 3
            or parts[0] not in NEIGHBOURHOODS
            or parts[1] not in ("n0", "n1")
            or parts[2] not in ("all", "written")
        ):
            raise ValueError(
                f"variant {name!r} is not of the form NEIGHBOURHOOD-nN0-UPDATE with NEIGHBOURHOOD in "
                f"{NEIGHBOURHOODS}, N0 in (0, 1), UPDATE in ('all', 'written'), e.g. 'hard-n1-all'."
            )
        return cls(parts[0], int(parts[1][1:]), parts[2])


ALL_VARIANTS = tuple(
    Variant(nb, n0, up) for nb in NEIGHBOURHOODS for n0 in (1, 0) for up in ("all", "written")
)


def parse_variants(spec: str | Sequence[str]) -> list[Variant]:
    """``"all"``, or names separated by commas (``"none-n1-all,hard-n1-all"``)."""
    names = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return list(ALL_VARIANTS)
    variants = [Variant.parse(n) for n in names]
    if not variants:
        raise ValueError("no variant given.")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants {spec!r} name one variant twice.")
    return variants
