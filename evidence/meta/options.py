"""The option vocabularies every entry point accepts, validated in one place.

The dashboard names its interval option ``ci`` ("z", "hksj", "hksj-adhoc") because that is
what a reader sees change; metafor calls the same switch ``test`` ("z", "knha", "adhoc")
because it changes the test distribution of the estimate, and with it the prediction interval
and the moderator test. ``TEST_FOR_CI`` is the one translation between the two.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

POOL_METHODS = ("GLMM", "REML", "DL", "ML", "PM")
TRANSFORMS = ("logit", "freeman-tukey")
CI_METHODS = ("z", "hksj", "hksj-adhoc")

#: dashboard ci name -> metafor ``test=`` value (metafor 3.8-1 supports both "knha" and "adhoc").
TEST_FOR_CI = {"z": "z", "hksj": "knha", "hksj-adhoc": "adhoc"}


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ValueError naming the allowed values, so a typo fails before any fitting."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, not {value!r}")


def validate_pooling(method: str, transform: str, ci: str) -> None:
    """Check the (method, transform, ci) of a single-proportion pool and its subgroups."""
    check_choice("method", method, POOL_METHODS)
    check_choice("transform", transform, TRANSFORMS)
    check_choice("ci", ci, CI_METHODS)


class NumberedLabels(Sequence[str]):
    """The labels "Study 1" … "Study k", made when read: at 100,000 unlabelled studies,
    building the strings costs a third of a Mantel-Haenszel pool, and a caller that gave no
    labels rarely reads them. Equal to any sequence of the same strings, as its tuple is."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __len__(self) -> int:
        return self.k

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(f"Study {i + 1}" for i in range(self.k)[index])
        return f"Study {range(self.k)[index] + 1}"

    def __iter__(self) -> Iterator[str]:
        return (f"Study {i + 1}" for i in range(self.k))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NumberedLabels):
            return self.k == other.k
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == self.k and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"NumberedLabels({self.k})"


def study_labels(labels: Sequence[str] | None, k: int) -> Sequence[str]:
    """The labels given, as strings, or "Study 1" … "Study k" as metafor numbers them."""
    if labels is None:
        return NumberedLabels(k)
    out = [str(s) for s in labels]
    if len(out) != k:
        raise ValueError(f"{len(out)} labels for {k} studies")
    return out
