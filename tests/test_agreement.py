"""The agreement figures the Methods page shows are the engine's own, measured now: the shipped
data/agreement.json must match what the engine gives over every golden case."""

from __future__ import annotations

import json
import math

from evidence import agreement


def test_the_shipped_agreement_figures_are_current() -> None:
    shipped = json.loads(agreement.SUMMARY.read_text(encoding="utf-8"))
    measured = agreement.measure()
    assert {k: v for k, v in shipped.items() if k != "rows"} == {
        k: v for k, v in measured.items() if k != "rows"
    }, "regenerate with `python -m evidence.agreement`"
    keys = [(r["method"], r["quantity"], r["cases"]) for r in shipped["rows"]]
    assert keys == [(r["method"], r["quantity"], r["cases"]) for r in measured["rows"]]
    for old, new in zip(shipped["rows"], measured["rows"], strict=True):
        a, b = old["max_abs_difference"], new["max_abs_difference"]
        # Differences of 1e-13 move in their last bits with the platform's floating point.
        assert (a is None) == (b is None) and (
            a is None or math.isclose(a, b, rel_tol=0.05, abs_tol=1e-15)
        ), old


def test_every_quantity_agrees_with_metafor_within_the_tests_tolerances() -> None:
    summary = agreement.load()
    table = summary.table
    inverse_variance = table[table["method"] != agreement.GLMM_FAMILY]["max_abs_difference"]
    assert inverse_variance.max() < 1e-9
    glmm = table[table["method"] == agreement.GLMM_FAMILY].set_index("quantity")
    assert glmm.loc["estimate", "max_abs_difference"] < 1e-5
    assert summary.headline.startswith("Over 296 inverse-variance cases")
    assert "metafor" in summary.versions
