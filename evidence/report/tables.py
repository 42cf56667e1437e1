"""The report's tables for an evidence profile: the studies in the slice, every extracted number
with its provenance, the pooled results, the tests, the summary of findings and its footnotes.

One set of frames, written twice: `tables.xlsx` (XlsxWriter: numbers as numbers, text as text
with `strings_to_formulas`, `strings_to_urls` and `strings_to_numbers` off, so nothing becomes a
formula or a link; a text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return
gets the project's escape, `evidence.extraction.cells.safe_cell`, and Excel's quote prefix) and
one CSV per table (`evidence.extraction.export.frame_to_csv`: UTF-8 with a BOM, the same escape).
The workbook's creation date is fixed, so the same slice gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Mapping

import pandas as pd
import xlsxwriter

from evidence import grade, vocab
from evidence.extraction.cells import safe_cell
from evidence.extraction.export import frame_to_csv

FIXED_DATE = dt.datetime(2000, 1, 1)  # the workbook's recorded creation date: reproducible bytes
STUDY_COLUMNS = [
    "study_id", "first_author", "year", "title", "venue", "publication_type", "design", "pmid",
    "doi", "nct_id", "url", "in_review_window", "extraction_status",
]  # fmt: skip
OUTCOME_COLUMNS = [
    "outcome_id", "cohort_id", "study_id", "label", "arm", "outcome", "outcome_label", "events",
    "total", "value", "value_low", "value_high", "unit", "statistic", "definition", "timepoint",
    "status", "derivation", "use_in_analysis", "conflict_note", "caveat", "source",
    "source_kind", "source_url", "locator", "quote",
]  # fmt: skip


def studies_frame(studies: pd.DataFrame) -> pd.DataFrame:
    return studies[STUDY_COLUMNS].reset_index(drop=True)


def outcomes_frame(numbers: pd.DataFrame) -> pd.DataFrame:
    out = numbers.assign(outcome_label=numbers["outcome"].map(vocab.OUTCOMES.label))
    return out[OUTCOME_COLUMNS].reset_index(drop=True)


def pooled_frame(document: Mapping) -> pd.DataFrame:
    rows = []
    for record in document["pooled"]:
        rows.append(
            {
                "id": record["id"],
                "page": record["page"],
                "outcome": record["outcome"],
                "outcome_label": vocab.OUTCOMES.label(record["outcome"]),
                "measure": record["measure"],
                "method": record["method"],
                "k": record["k"],
                "events": record["events"],
                "patients": record["patients"],
                **{
                    key: record[key]
                    for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2")
                },
                "cohort_ids": "; ".join(record["cohort_ids"]),
            }
        )
    return pd.DataFrame(rows, columns=_POOLED)


_POOLED = [
    "id", "page", "outcome", "outcome_label", "measure", "method", "k", "events", "patients",
    "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "cohort_ids",
]  # fmt: skip


def tests_frame(document: Mapping) -> pd.DataFrame:
    """The tests for subgroup differences and the dose meta-regressions, one row per number."""
    rows = []
    for record in document["subgroup_tests"]:
        for name, test in (
            ("subgroup differences, common tau²", record["test_common_tau2"]),
            ("subgroup differences, a tau² per subgroup", record["test_separate_tau2"]),
        ):
            rows.append(
                {
                    "id": record["id"],
                    "outcome": record["outcome"],
                    "analysis": f"{name} (split: {record['split']})",
                    "statistic": test["statistic"],
                    "df": test["df"],
                    "df2": test.get("df2"),
                    "p": test["p"],
                    "estimate": None,
                    "ci_low": None,
                    "ci_high": None,
                    "tau2": None,
                }
            )
    for record in document["dose_regressions"]:
        rows.append(
            {
                "id": record["id"],
                "outcome": record["outcome"],
                "analysis": "dose meta-regression, slope per 100 mg/day (logit)",
                "statistic": None,
                "df": None,
                "df2": None,
                "p": record["p"],
                "estimate": record["slope_per_100mg"],
                "ci_low": record["ci_low"],
                "ci_high": record["ci_high"],
                "tau2": record["tau2"],
            }
        )
    columns = ["id", "outcome", "analysis", "statistic", "df", "df2", "p", "estimate", "ci_low",
               "ci_high", "tau2"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def sof_frame(document: Mapping) -> pd.DataFrame:
    rows = []
    for record in document["sof"]:
        estimate = record["estimate"] or {}
        relative = record["relative"] or {}
        absolute = record["absolute_per_1000"] or {}
        row = {
            "id": record["id"],
            "section": record["section"],
            "outcome": record["label"],
            "framing": record["framing"],
            "population": record["population"],
            "studies": record["studies"],
            "patients": record["patients"],
            "events": record["events"],
            "method": record["method"],
            "proportion": estimate.get("value"),
            "ci_low": estimate.get("ci_low"),
            "ci_high": estimate.get("ci_high"),
            "pi_low": estimate.get("pi_low"),
            "pi_high": estimate.get("pi_high"),
            "risk_ratio": relative.get("value"),
            "rr_ci_low": relative.get("ci_low"),
            "rr_ci_high": relative.get("ci_high"),
            "comparator_per_1000": absolute.get("comparator_risk"),
            "difference_per_1000": absolute.get("difference"),
            "start": record["start"],
        }
        for name in grade.DOMAINS:
            domain = record["domains"][name]
            row[f"{name}_suggested"] = domain["suggested"]
            row[f"{name}_decided"] = domain["decided"]
            row[f"{name}_reason"] = domain["reason"]
        row |= {
            "certainty": record["certainty"],
            "footnotes": ", ".join(str(n) for n in record["footnotes"]),
            "statement": record["statement"],
        }
        rows.append(row)
    return pd.DataFrame(rows)


def footnotes_frame(document: Mapping) -> pd.DataFrame:
    return pd.DataFrame(document["footnotes"], columns=["number", "row", "domain", "text"])


def frames(
    studies: pd.DataFrame, numbers: pd.DataFrame, document: Mapping
) -> dict[str, pd.DataFrame]:
    """Every table of the report, by sheet name, in the workbook's order."""
    return {
        "studies": studies_frame(studies),
        "outcomes": outcomes_frame(numbers),
        "pooled": pooled_frame(document),
        "tests": tests_frame(document),
        "sof": sof_frame(document),
        "footnotes": footnotes_frame(document),
    }


def _cell(value: object) -> object:
    """A frame's value as a plain Python value (None for missing)."""
    if value is None:
        return None
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def workbook(tables: Mapping[str, pd.DataFrame], readme: list[str]) -> bytes:
    """The tables as one workbook, a README sheet first (what the file is and where from)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": False,
        },
    )
    book.set_properties(
        {"title": "Anakinra for ICANS: report tables", "created": FIXED_DATE, "comments": ""}
    )
    header = book.add_format({"bold": True})
    quoted = book.add_format({"quote_prefix": True})
    sheet = book.add_worksheet("README")
    for index, line in enumerate(readme):
        _write(sheet, index, 0, line, quoted)
    for name, frame in tables.items():
        sheet = book.add_worksheet(name)
        for column, title in enumerate(frame.columns):
            sheet.write_string(0, column, str(safe_cell(str(title))), header)
        for row_index, record in enumerate(frame.itertuples(index=False, name=None), start=1):
            for column, value in enumerate(record):
                _write(sheet, row_index, column, _cell(value), quoted)
        sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()


def _write(sheet: xlsxwriter.worksheet.Worksheet, row: int, column: int, value: object,
           quoted: xlsxwriter.format.Format) -> None:  # fmt: skip
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | float):
        sheet.write_number(row, column, value)
    else:
        text = str(safe_cell(str(value)))
        if text != str(value):
            sheet.write_string(row, column, text, quoted)
        else:
            sheet.write_string(row, column, text)


def csv_files(tables: Mapping[str, pd.DataFrame]) -> dict[str, bytes]:
    return {
        f"{name}.csv": frame_to_csv(frame.map(_cell).astype(object))
        for name, frame in tables.items()
    }
