"""How closely the engine agrees with R metafor, measured live against the golden files.

The Methods page quotes these figures, so they are recomputed from `tests/reference/golden_*.json`
(written by the R scripts beside them) with the engine in this process, rather than typed into a
page where they could go stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from evidence.meta.glmm import fit_glmm_logit
from evidence.meta.proportions import pool_proportions
from evidence.meta.results import PoolResult

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "tests" / "reference"
# Quantities compared on the model scale: golden-file name -> how to read it off a PoolResult.
POOL_FIELDS: dict[str, Callable[[PoolResult], float | None]] = {
    "estimate": lambda r: r.model.estimate,
    "se": lambda r: r.se,
    "ci_lb": lambda r: r.model.ci.low,
    "ci_ub": lambda r: r.model.ci.high,
    "pi_lb": lambda r: r.model.pi.low,
    "pi_ub": lambda r: r.model.pi.high,
    "tau2": lambda r: r.tau2,
    "I2": lambda r: r.i2,
    "QE": lambda r: r.heterogeneity.statistic,
}
GLMM_FIELDS = ("estimate", "se", "tau2", "i2", "qe_wald", "qe_lrt")


@dataclass(frozen=True)
class Agreement:
    headline: str
    table: pd.DataFrame
    versions: str


def _max_abs(pairs: list[tuple[float | None, float | None]]) -> float:
    diffs = [abs(a - b) for a, b in pairs if a is not None and b is not None]
    return max(diffs, default=float("nan"))


@cache
def agreement_summary() -> Agreement:
    """Largest absolute difference per method family and quantity over every golden case."""
    iv = json.loads((REFERENCE_DIR / "golden_iv.json").read_text())
    glmm = json.loads((REFERENCE_DIR / "golden_glmm.json").read_text())
    rows = []
    families: dict[str, list[dict]] = {}
    for case in iv["pool"]:
        families.setdefault(f"{case['transform']} {case['method']} ({case['ci']})", []).append(case)
    for family, cases in sorted(families.items()):
        results = [
            (
                case["expected"],
                pool_proportions(
                    case["events"],
                    case["totals"],
                    method=case["method"],
                    transform=case["transform"],
                    ci=case["ci"],
                ),
            )
            for case in cases
        ]
        for golden_name, read in POOL_FIELDS.items():
            pairs = [(expected.get(golden_name), read(r)) for expected, r in results]
            rows.append(
                {
                    "method": family,
                    "cases": len(cases),
                    "quantity": golden_name,
                    "max_abs_difference": _max_abs(pairs),
                }
            )
    attempted = [
        (case["results"], fit_glmm_logit(case["x"], case["n"]))
        for case in glmm["cases"].values()
        if case.get("status") == "ok"
    ]
    # A fit the engine reports as not converged is never shown (logit-REML is, with the
    # reason), so it is counted apart rather than compared.
    fitted = [(expected, fit) for expected, fit in attempted if fit.converged]
    flagged = len(attempted) - len(fitted)
    for field in GLMM_FIELDS:
        pairs = [(expected.get(field), getattr(fit, field)) for expected, fit in fitted]
        rows.append(
            {
                "method": "GLMM (rma.glmm)",
                "cases": len(fitted),
                "quantity": field,
                "max_abs_difference": _max_abs(pairs),
            }
        )
    table = pd.DataFrame(rows)
    iv_worst = table.loc[table["method"] != "GLMM (rma.glmm)", "max_abs_difference"].max()
    glmm_worst = table.loc[table["method"] == "GLMM (rma.glmm)", "max_abs_difference"].max()
    headline = (
        f"Over {len(iv['pool'])} inverse-variance cases the largest difference from metafor on "
        f"any quantity is {iv_worst:.1e}; over {len(fitted)} converged GLMM cases it is "
        f"{glmm_worst:.1e}. {flagged} further GLMM case(s) with a nearly flat likelihood are "
        "reported as not converged and shown with logit-REML instead."
    )
    versions = "Reference: " + "; ".join(f"{k} {v}" for k, v in iv["versions"].items())
    return Agreement(headline, table, versions)
