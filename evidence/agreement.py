"""How closely the engine agrees with R metafor and lme4, measured against the golden files.

The Methods page quotes these figures. They are measured by the engine over every case of
`tests/reference/golden_*.json` (written by the R scripts beside them) and shipped as
`data/agreement.json`, so the page neither recomputes 300 fits on a visit nor needs the test
folder at run time; `tests/test_agreement.py` fails when the shipped file no longer matches what
the engine and the golden files give.

    python -m evidence.agreement        # measure and write data/agreement.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evidence.meta.glmm import fit_glmm_logit
from evidence.meta.proportions import pool_proportions
from evidence.meta.results import PoolResult

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "tests" / "reference"
SUMMARY = ROOT / "data" / "agreement.json"
GLMM_FAMILY = "GLMM (rma.glmm)"
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
    """What the Methods page shows: a sentence, the table per method and quantity, versions."""

    headline: str
    table: pd.DataFrame
    versions: str


def _max_abs(pairs: list[tuple[float | None, float | None]]) -> float | None:
    diffs = [abs(a - b) for a, b in pairs if a is not None and b is not None]
    return max(diffs, default=None)


def measure(reference_dir: Path = REFERENCE_DIR) -> dict[str, Any]:
    """Largest absolute difference per method family and quantity over every golden case."""
    iv = json.loads((reference_dir / "golden_iv.json").read_text(encoding="utf-8"))
    glmm = json.loads((reference_dir / "golden_glmm.json").read_text(encoding="utf-8"))
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
    for field in GLMM_FIELDS:
        pairs = [(expected.get(field), getattr(fit, field)) for expected, fit in fitted]
        rows.append(
            {
                "method": GLMM_FAMILY,
                "cases": len(fitted),
                "quantity": field,
                "max_abs_difference": _max_abs(pairs),
            }
        )
    return {
        "inverse_variance_cases": len(iv["pool"]),
        "glmm_cases_compared": len(fitted),
        "glmm_cases_flagged": len(attempted) - len(fitted),
        "versions": iv["versions"],
        "rows": rows,
    }


def summary_from(measured: dict[str, Any]) -> Agreement:
    """The page's sentence and table from measured figures."""
    table = pd.DataFrame(measured["rows"])
    is_glmm = table["method"] == GLMM_FAMILY
    iv_worst = table.loc[~is_glmm, "max_abs_difference"].max()
    glmm_worst = table.loc[is_glmm, "max_abs_difference"].max()
    headline = (
        f"Over {measured['inverse_variance_cases']} inverse-variance cases the largest difference "
        f"from metafor on any quantity is {iv_worst:.1e}; over "
        f"{measured['glmm_cases_compared']} converged GLMM cases it is {glmm_worst:.1e}. "
        f"{measured['glmm_cases_flagged']} further GLMM case(s) with a nearly flat likelihood are "
        "reported as not converged and shown with logit-REML instead."
    )
    versions = "Reference: " + "; ".join(f"{k} {v}" for k, v in measured["versions"].items())
    return Agreement(headline, table, versions)


def load(path: Path = SUMMARY) -> Agreement:
    """The shipped agreement figures, as the Methods page shows them."""
    return summary_from(json.loads(path.read_text(encoding="utf-8")))


def to_json(measured: dict[str, Any]) -> str:
    """The figures as JSON with one table row a line, so a change reads as a small diff."""
    head = {key: value for key, value in measured.items() if key != "rows"}
    lines = json.dumps(head, indent=1)[:-2] + ',\n "rows": [\n'
    lines += ",\n".join("  " + json.dumps(row) for row in measured["rows"])
    return lines + "\n ]\n}\n"


def main() -> int:
    SUMMARY.write_text(to_json(measure()), encoding="utf-8")
    print(f"wrote {SUMMARY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
