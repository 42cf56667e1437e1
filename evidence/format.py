"""How values read on screen and in the report bundle (one set of decimals for both). A missing
value says "not reported" (data) or "not estimable" (maths), never "nan", so a reader can tell a
gap in the evidence from a gap in the method. Text that comes from a link or an upload is shown
as text (`plain`), never interpreted as Markdown."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import TYPE_CHECKING

import pandas as pd

from evidence import vocab

if TYPE_CHECKING:
    from evidence.meta.results import SubgroupResult

NOT_REPORTED = "not reported"
NOT_ESTIMABLE = "not estimable"


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 study", "3 studies": a count a reader reads as words, never "study(ies)"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


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


# Table columns that hold a vocabulary's codes, shown by their labels.
CODED_COLUMNS: dict[str, vocab.Vocabulary] = {
    "publication_type": vocab.PUBLICATION_TYPES,
    "design": vocab.STUDY_DESIGNS,
    "review_inclusion": vocab.REVIEW_INCLUSION,
    "extraction_status": vocab.EXTRACTION_STATUS,
    "source_kind": vocab.SOURCE_KINDS,
    "kind": vocab.SOURCE_KINDS,
    "arm": vocab.ARMS,
    "indication": vocab.INDICATIONS,
    "sub_indication": vocab.SUB_INDICATIONS,
    "disease": vocab.DISEASES,
    "dose_band": vocab.DOSE_BANDS,
    "route": vocab.ROUTES,
    "grading_system": vocab.GRADING_SYSTEMS,
    "unit": vocab.UNITS,
    "statistic": vocab.STATISTICS,
    "status": vocab.NUMBER_STATUS,
    "tool": vocab.QUALITY_TOOLS,
    "judgement": vocab.JUDGEMENTS,
    "percent_check": vocab.CHECK_RESULTS,
    "sum_check": vocab.CHECK_RESULTS,
    "quantity": vocab.AGREEMENT_QUANTITIES,
}
# Headers of table columns that read better than their names.
HEADERS = {
    "study_id": "Study",
    "label": "Cohort",
    "n": "n",
    "total": "n",
    "events": "Events",
    "value": "Printed value",
    "value_low": "Low",
    "value_high": "High",
    "use_in_analysis": "Used",
    "source": "Source",
    "source_kind": "Kind of source",
    "locator": "Where in the source",
    "quote": "Quote",
    "derivation": "Arithmetic",
    "conflict_note": "When sources disagree",
    "timepoint": "Time point",
    "high_label": "Higher-dose cohort",
    "high_events": "Events",
    "high_total": "n",
    "low_label": "Lower-dose cohort",
    "low_events": "Events",
    "low_total": "n",
    "max_abs_difference": "Largest difference from R",
    "table_name": "Table",
    "n_rows": "Rows",
    "key": "Item",
}


def header(column: str) -> str:
    """A column's header for people: its own words, never its code name."""
    if column in HEADERS:
        return HEADERS[column]
    text = column.replace("_", " ")
    return text[:1].upper() + text[1:]


def _cell_text(value: object) -> object:
    """A number as it would print in the table (5, 19.4), anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return str(int(value)) if float(value).is_integer() else format(value, "g")


def readable(frame: pd.DataFrame, kept: Collection[str] = ()) -> pd.DataFrame:
    """A table as people read it: vocabulary codes as their labels, a gap as "not reported"
    (true/false columns and the `kept` ones, links say, are left as they are)."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_bool_dtype(values) or column in kept:
            continue
        if column in CODED_COLUMNS:
            labels = CODED_COLUMNS[column].labels
            values = values.map(lambda v, labels=labels: labels.get(v, v), na_action="ignore")
        if values.isna().any():
            # One type per column (Arrow needs it): numbers as text beside "not reported".
            values = values.map(_cell_text, na_action="ignore").astype(object)
            values = values.where(values.notna(), NOT_REPORTED)
        shown[column] = values
    return shown


def build_info_items(info: pd.DataFrame) -> pd.DataFrame:
    """The data version's items (key, value) in words: "SHA-256 of studies.csv", "Rows in
    studies"."""

    def item(key: str) -> str:
        if key in vocab.BUILD_INFO_ITEMS:
            return vocab.BUILD_INFO_ITEMS[key]
        kind, _, sheet = key.partition(":")
        if kind == "sheet_sha256":
            return f"SHA-256 of {sheet}.csv"
        if kind == "rows":
            return f"Rows in {sheet}"
        return header(key)

    return info.assign(key=info["key"].map(item))


def subgroup_test_line(result: SubgroupResult) -> str:
    """The test for subgroup differences in words, or why there is none."""
    test = result.moderator_test
    if test.statistic is None:
        return "Test for subgroup differences: not estimable in this slice (notes below)."
    if test.distribution == "F":
        line = (
            "Test for subgroup differences (common τ², Hartung-Knapp): "
            f"F = {number(test.statistic)}, df = {test.df}, {test.df2}, "
            f"p = {number(test.p_value, 3)}"
        )
    else:
        line = (
            f"Test for subgroup differences (common τ²): Q = {number(test.statistic)}, "
            f"df = {test.df}, p = {number(test.p_value, 3)}"
        )
    separate = result.separate_tau2_test
    if separate.statistic is not None:
        line += (
            f" · with a τ² per subgroup: Q = {number(separate.statistic)}, "
            f"df = {separate.df}, p = {number(separate.p_value, 3)}"
        )
    return line
