"""pool_proportions(method="GLMM"): dispatch to evidence.meta.glmm and the visible fallback.

The GLMM itself is tested in tests/test_meta_glmm.py; here only the contract matters: a
converged fit is shown as the GLMM with metafor's CI/PI formulas, and any failure (not
converged, raised, or module missing) shows logit inverse-variance REML with
``fallback_reason`` set, never silently.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evidence.meta.proportions import pool_proportions

GOLDEN = json.loads((Path(__file__).parent / "reference" / "golden_iv.json").read_text())
PRITZ = GOLDEN["datasets"]["prop"]["pritz1997"]
Z = 1.959963984540054


@dataclass(frozen=True)
class FakeGlmmFit:
    """Same fields as evidence.meta.glmm.GlmmFit (the agreed contract)."""

    estimate: float
    se: float
    tau2: float
    i2: float
    h2: float
    qe_wald: float
    qe_wald_p: float
    qe_lrt: float
    qe_lrt_p: float
    qe_df: int
    loglik: float
    converged: bool
    message: str


def _install_fake(monkeypatch: pytest.MonkeyPatch, fit: Any) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []

    def fake(events: Any, totals: Any) -> Any:
        calls.append((events, totals))
        if isinstance(fit, Exception):
            raise fit
        return fit

    module = types.ModuleType("evidence.meta.glmm")
    module.fit_glmm_logit = fake  # type: ignore[attr-defined]
    module.GlmmFit = FakeGlmmFit  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "evidence.meta.glmm", module)
    return calls


CONVERGED = FakeGlmmFit(
    1.3766, 0.2884, 0.5893, 67.79, 3.105, 25.1, 0.02, 42.2, 1e-5, 13, -30.0, True, ""
)
FAILED = FakeGlmmFit(
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    math.nan,
    13,
    math.nan,
    False,
    "Hessian not positive definite",
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
    try:
        importlib.import_module("evidence.meta.glmm")
    except ImportError:
        pytest.skip("evidence/meta/glmm.py not present yet")
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
