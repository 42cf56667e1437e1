"""How numbers read on screen. A missing value says "not reported" (data) or "not estimable"
(maths), never "nan", so a reader can tell a gap in the evidence from a gap in the method."""

from __future__ import annotations

import math

NOT_REPORTED = "not reported"
NOT_ESTIMABLE = "not estimable"


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: float | None, digits: int = 1) -> str:
    return NOT_ESTIMABLE if _missing(value) else f"{100 * value:.{digits}f}%"


def pct_interval(low: float | None, high: float | None, digits: int = 1) -> str:
    if _missing(low) or _missing(high):
        return NOT_ESTIMABLE
    return f"{100 * low:.{digits}f}–{100 * high:.{digits}f}%"


def number(value: float | int | None, digits: int = 2) -> str:
    if _missing(value):
        return NOT_ESTIMABLE
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
