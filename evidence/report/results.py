"""results.json: every pooled number of the slice and its summary of findings, for other tools.

The schema is versioned (`"schema": 1`) and written out as JSON Schema beside this module
(`results.schema.json`, also put in every bundle); docs/report.md describes each field.
Proportions are on the 0-1 scale, risk ratios on the ratio scale; certainty and domain levels
are lower-case words. A number that does not exist (no prediction interval with two studies) is
null. Nothing here depends on when the file was made: the same query and data give the same
bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evidence import grade
from evidence.report.numbers import DoseRegression, Numbers, Proportion, Ratio, Subgroups
from evidence.sof import SofRow

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")
CERTAINTY = {4: "high", 3: "moderate", 2: "low", 1: "very low", None: "not yet graded"}
FRAMING = {"event_rate": "event_rate", "comparative": "comparison"}


def _num(value: float | int | None) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def proportion_record(item: Proportion) -> dict[str, Any]:
    pooled = item.pooled
    result = pooled.result
    assert result is not None
    single = result.k == 1
    p = result.proportion
    only = result.studies[0] if single else None
    return {
        "id": item.id,
        "page": item.page,
        "outcome": pooled.outcome,
        "measure": "proportion",
        "method": result.method,
        "method_requested": pooled.method,
        "k": result.k,
        "events": result.events_total,
        "patients": result.n_total,
        "estimate": _num(only.proportion if only else p.estimate),
        "ci_low": _num(only.ci.low if only else p.ci.low),
        "ci_high": _num(only.ci.high if only else p.ci.high),
        "pi_low": None if result.k < 3 else _num(p.pi.low),
        "pi_high": None if result.k < 3 else _num(p.pi.high),
        "tau2": _num(result.tau2),
        "i2": _num(result.i2),
        "cohort_ids": [str(c) for c in pooled.rows["cohort_id"]],
        "notes": list(result.notes),
    }


def ratio_record(item: Ratio) -> dict[str, Any]:
    result = item.result
    ratio = result.ratio
    return {
        "id": item.id,
        "page": item.page,
        "outcome": item.outcome,
        "measure": "risk_ratio",
        "comparison": item.what,
        "method": "Mantel-Haenszel",
        "method_requested": "Mantel-Haenszel",
        "k": result.k,
        "events": sum(item.events_a) + sum(item.events_b),
        "patients": sum(item.total_a) + sum(item.total_b),
        "estimate": _num(ratio.estimate),
        "ci_low": _num(ratio.ci.low),
        "ci_high": _num(ratio.ci.high),
        "pi_low": None,
        "pi_high": None,
        "tau2": None,
        "i2": _num(result.i2),
        "cohort_ids": list(item.cohort_ids),
        "notes": list(result.notes),
        "groups": [
            {"label": label, "events_a": a, "total_a": n_a, "events_b": b, "total_b": n_b}
            for label, a, n_a, b, n_b in zip(
                item.labels,
                item.events_a,
                item.total_a,
                item.events_b,
                item.total_b,
                strict=True,
            )
        ],
    }


def subgroup_record(item: Subgroups) -> dict[str, Any]:
    result = item.result
    test, separate = result.moderator_test, result.separate_tau2_test
    return {
        "id": item.id,
        "page": item.page,
        "outcome": item.pooled.outcome,
        "split": item.split,
        "method": result.method,
        "subgroups": [
            {
                "name": group.name,
                "k": group.result.k,
                "estimate": _num(group.result.proportion.estimate),
                "ci_low": _num(group.result.proportion.ci.low),
                "ci_high": _num(group.result.proportion.ci.high),
            }
            for group in result.subgroups
        ],
        "test_common_tau2": {
            "distribution": test.distribution,
            "statistic": _num(test.statistic),
            "df": test.df,
            "df2": test.df2,
            "p": _num(test.p_value),
        },
        "test_separate_tau2": {
            "distribution": "chi2",
            "statistic": _num(separate.statistic),
            "df": separate.df,
            "p": _num(separate.p_value),
        },
        "cohort_ids": [str(c) for c in item.pooled.rows["cohort_id"]],
        "notes": list(result.notes),
    }


def regression_record(item: DoseRegression) -> dict[str, Any]:
    result = item.result
    slope = result.slope

    def per_100(value: float | None) -> float | None:
        return None if value is None else _num(100 * value)

    return {
        "id": item.id,
        "page": item.page,
        "outcome": item.pooled.outcome,
        "method": result.method,
        "ci_method": result.ci_method,
        "k": result.k,
        "slope_per_100mg": per_100(slope.estimate),
        "ci_low": per_100(slope.ci.low),
        "ci_high": per_100(slope.ci.high),
        "p": _num(slope.p_value),
        "tau2": _num(result.tau2),
        "cohort_ids": [str(c) for c in item.points["cohort_id"]],
        "notes": list(result.notes),
    }


def sof_record(row: SofRow) -> dict[str, Any]:
    domains = {}
    for domain in row.domains:
        name = domain.suggestion.domain
        decision = domain.decision
        domains[name] = {
            "suggested": grade.LEVEL_LABELS[domain.suggestion.level],
            "decided": None if decision is None else grade.LEVEL_LABELS[decision.level],
            "reason": None if decision is None else decision.reason,
            "suggestion_reason": domain.suggestion.reason,
            "figures": {key: value for key, value in domain.suggestion.figures},
        }
    estimate = row.estimate
    relative = row.relative
    absolute = row.absolute
    return {
        "id": row.id,
        "section": row.section,
        "outcome": row.outcome,
        "label": row.label,
        "framing": FRAMING[row.framing],
        "population": row.population,
        "start": CERTAINTY[grade.START[row.framing]],
        "studies": row.studies,
        "studies_in_slice": row.studies_in_slice,
        "patients": row.patients,
        "events": row.events,
        "method": row.method,
        "estimate": None
        if estimate is None
        else {
            "value": _num(estimate.value),
            "ci_low": _num(estimate.low),
            "ci_high": _num(estimate.high),
            "pi_low": _num(estimate.pi_low) if row.studies >= 3 else None,
            "pi_high": _num(estimate.pi_high) if row.studies >= 3 else None,
        },
        "relative": None
        if relative is None
        else {
            "measure": "risk_ratio",
            "value": _num(relative.value),
            "ci_low": _num(relative.low),
            "ci_high": _num(relative.high),
        },
        "absolute_per_1000": None
        if absolute is None
        else {
            "comparator_risk": _num(absolute.comparator_per_1000),
            "difference": _num(absolute.difference),
            "ci_low": _num(absolute.low),
            "ci_high": _num(absolute.high),
        },
        "thresholds": list(row.thresholds),
        "domains": domains,
        "certainty": CERTAINTY[row.certainty.level],
        "statement": row.statement,
        "note": row.note,
        "footnotes": list(row.footnotes),
    }


def document(numbers: Numbers, query: str, data_version: str, notices: list[str]) -> dict:
    """The results document (see the module docstring and results.schema.json)."""
    pooled = [proportion_record(p) for p in numbers.proportions]
    pooled += [ratio_record(r) for r in numbers.ratios]
    return {
        "schema": SCHEMA_VERSION,
        "query": query,
        "data_version": data_version,
        "slice": numbers.rows.describe(),
        "method": numbers.view.method,
        "notices": notices,
        "pooled": pooled,
        "subgroup_tests": [subgroup_record(s) for s in numbers.subgroups],
        "dose_regressions": [regression_record(r) for r in numbers.regressions],
        "sof": [sof_record(row) for row in numbers.summary.rows],
        "footnotes": [
            {"number": f.number, "row": f.row, "domain": f.domain, "text": f.text}
            for f in numbers.summary.footnotes
        ],
        "panel": {
            "graded_on": numbers.panel.data_version,
            "thresholds": [{"row": row, "value": value} for row, value in numbers.panel.thresholds],
        },
    }


def dumps(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
