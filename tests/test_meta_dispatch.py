"""pool_proportions(method="GLMM"): dispatch to evidence.meta.glmm and the visible fallback.

The GLMM itself is tested in tests/test_meta_glmm.py; here only the hand-over matters: a
converged fit is shown as the GLMM with metafor's CI/PI formulas, and any failure (not
converged, or an exception) shows logit inverse-variance REML with ``fallback_reason`` set,
never silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from evidence.meta import glmm
from evidence.meta.glmm import GlmmFit, fit_glmm_logit
from evidence.meta.proportions import pool_proportions

GOLDEN = json.loads((Path(__file__).parent / "reference" / "golden_iv.json").read_text())
PRITZ = GOLDEN["datasets"]["prop"]["pritz1997"]
Z = 1.959963984540054


def _install_fake(
    monkeypatch: pytest.MonkeyPatch, fit: GlmmFit | Exception
) -> list[tuple[Any, Any]]:
    """Make pool_proportions see ``fit`` (or the exception raised) as the GLMM's answer."""
    calls: list[tuple[Any, Any]] = []

    def fake(events: Any, totals: Any) -> GlmmFit:
        calls.append((events, totals))
        if isinstance(fit, Exception):
            raise fit
        return fit

    monkeypatch.setattr(glmm, "fit_glmm_logit", fake)
    return calls


# Real GlmmFit records with round numbers in them, so the expected intervals below follow from
# known inputs; built from a real fit, they cannot drift from the fields GlmmFit has.
REAL = fit_glmm_logit(PRITZ["x"], PRITZ["n"])
CONVERGED = dataclasses.replace(
    REAL,
    estimate=1.3766,
    se=0.2884,
    tau2=0.5893,
    i2=67.79,
    h2=3.105,
    qe_wald=25.1,
    qe_wald_p=0.02,
    qe_lrt=42.2,
    qe_lrt_p=1e-5,
    qe_df=13,
    loglik=-30.0,
    converged=True,
    message="",
)
NUMBERS = ("estimate", "se", "tau2", "i2", "h2", "qe_wald", "qe_wald_p", "qe_lrt", "qe_lrt_p")
FAILED = dataclasses.replace(
    REAL,
    **dict.fromkeys(NUMBERS, math.nan),
    loglik=math.nan,
    converged=False,
    message="Hessian not positive definite",
)


def test_converged_glmm_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _install_fake(monkeypatch, CONVERGED)
    r = pool_proportions(PRITZ["x"], PRITZ["n"], method="GLMM")
    assert len(calls) == 1
    assert r.method == "GLMM" and r.converged and r.fallback_reason is None
    assert r.model.estimate == CONVERGED.estimate
    assert r.model.ci.low == pytest.approx(CONVERGED.estimate - Z * CONVERGED.se, rel=1e-12)
    half = Z * math.sqrt(CONVERGED.se**2 + CONVERGED.tau2)
    assert r.model.pi.high == pytest.approx(CONVERGED.estimate + half, rel=1e-12)
    expit = 1 / (1 + math.exp(-CONVERGED.estimate))
    assert r.proportion.estimate == pytest.approx(expit, rel=1e-12)
    assert r.heterogeneity.statistic == CONVERGED.qe_wald
    assert r.lrt is not None and r.lrt.statistic == CONVERGED.qe_lrt
    assert r.i2 == CONVERGED.i2 and r.tau2 == CONVERGED.tau2
    assert sum(s.weight or 0 for s in r.studies) == pytest.approx(100)
    assert any("approximate" in n for n in r.notes)


@pytest.mark.parametrize(
    ("fit", "fragment"),
    [(FAILED, "Hessian not positive definite"), (RuntimeError("boom"), "RuntimeError")],
)
def test_failed_glmm_falls_back_visibly(
    monkeypatch: pytest.MonkeyPatch, fit: Any, fragment: str
) -> None:
    _install_fake(monkeypatch, fit)
    r = pool_proportions(PRITZ["x"], PRITZ["n"], method="GLMM", ci="hksj")
    reml = pool_proportions(PRITZ["x"], PRITZ["n"], method="REML", ci="hksj")
    assert r.method == "REML" and r.method_requested == "GLMM"
    assert not r.converged
    assert r.fallback_reason is not None and fragment in r.fallback_reason
    assert r.fallback_reason in r.notes
    assert r.proportion == reml.proportion and r.tau2 == reml.tau2 and r.lrt is None


def test_glmm_options_that_do_not_apply_are_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake(monkeypatch, CONVERGED)
    r = pool_proportions(
        PRITZ["x"], PRITZ["n"], method="GLMM", transform="freeman-tukey", ci="hksj"
    )
    assert r.transform == "logit" and r.ci_method == "z"
    assert any("HKSJ is not defined" in n for n in r.notes)
    assert any("Freeman-Tukey option was ignored" in n for n in r.notes)


def test_glmm_single_study_not_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _install_fake(monkeypatch, CONVERGED)
    r = pool_proportions([3], [12], method="GLMM")
    assert not calls and r.k == 1 and r.tau2 is None


# --- end to end with the real evidence.meta.glmm, at the published precision ---------------

GLMM_PUBLISHED = [p for p in GOLDEN["published"] if p["kind"] == "glmm"]


@pytest.mark.parametrize("pub", GLMM_PUBLISHED, ids=lambda p: p["name"])
def test_real_glmm_reproduces_published_values(pub: dict[str, Any]) -> None:
    d = GOLDEN["datasets"]["prop"][pub["data"]]
    r = pool_proportions(d["x"], d["n"], method="GLMM")
    assert r.method == "GLMM", r.fallback_reason
    got = {
        "estimate": r.model.estimate,
        "se": r.se,
        "tau2": r.tau2,
        "bt_estimate": r.proportion.estimate,
        "bt_ci_lb": r.proportion.ci.low,
        "bt_ci_ub": r.proportion.ci.high,
        "bt_pi_lb": r.proportion.pi.low,
        "bt_pi_ub": r.proportion.pi.high,
    }
    for key, printed in pub["values"].items():
        decimals = len(printed.split(".")[1])
        actual = got[key]
        assert actual is not None
        # printed precision: the published number is the rounding of the true value
        assert abs(actual - float(printed)) <= 0.5 * 10**-decimals + 1e-12, (key, actual)
