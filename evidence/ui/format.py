"""How values read on screen. A missing value says "not reported" (data) or "not estimable"
(maths), never "nan", so a reader can tell a gap in the evidence from a gap in the method. Text
that comes from a link or an upload is shown as text (`plain`), never interpreted as Markdown."""

from __future__ import annotations

import math
import re

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


# Every character Markdown, Streamlit's directives (:color[...], :emoji:) or KaTeX ($) give a
# meaning to; a backslash makes each literal (CommonMark escapes any ASCII punctuation).
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'])")
# Addresses the renderer links by itself (GFM autolink literals: http://, www., e-mail): a zero
# width space inside the marker keeps them text and looks the same.
_AUTOLINKED = re.compile(r"(://|(?<![\w.])www\.|@)", re.IGNORECASE)
ZERO_WIDTH_SPACE = "\u200b"
ELLIPSIS = "…"


def shorten(text: str, limit: int = 120) -> str:
    """`text` cut to `limit` characters with an ellipsis (values from links and uploads can be
    of any length)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def plain(value: object, limit: int = 400) -> str:
    """A value from a link or an upload, to be shown inside Markdown as the text it is: every
    Markdown character escaped (so `[x](https://…)` cannot become a link, `![](…)` an image
    fetched from elsewhere, or `*x*` emphasis), bare addresses kept from being linked, line
    breaks as spaces, cut to `limit`."""
    text = shorten(" ".join(str(value).split()), limit)
    text = _AUTOLINKED.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)
