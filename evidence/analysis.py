"""From a filter state to the numbers a page shows: slice, outcome rows, pooled results.

This is the seam between the data layer (named queries) and the engine (evidence.meta): pages
call these functions and render what comes back; tests call the same functions to check that
the number on screen is the engine's number for the same rows. Nothing here imports Streamlit.

Vocabulary: a *study* is one report; a *cohort* is a group of patients within it (a dose level,
a sub-indication); pooling is over cohorts, one row per cohort, and a cohort appears once even
when several reports describe it (`studies.same_patients_as`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pandas as pd

from evidence import db
from evidence.filters import DOSE_BANDS, GRADING, INDICATIONS, Filters
from evidence.meta.comparisons import compare_groups
from evidence.meta.proportions import pool_proportions
from evidence.meta.regression import meta_regression
from evidence.meta.results import (
    ComparisonResult,
    MetaRegressionResult,
    PoolResult,
    SubgroupResult,
)
from evidence.meta.subgroups import subgroup_analysis
from evidence.sheets import OUTCOME_LABELS

TREATMENT_OUTCOMES = ("icans_response", "icans_resolution", "grade5_icans", "early_mortality")
PROPHYLAXIS_OUTCOMES = ("any_icans", "grade3plus_icans", "any_crs", "grade3plus_crs")
SAFETY_OUTCOMES = (
    "infection",
    "viral_encephalitis",
    "death",
    "trm",
    "grade5_icans",
    "anakinra_discontinuation",
)
SUBGROUP_DIMENSIONS = {
    "product": "CAR-T product",
    "dose_band": "Anakinra dose band",
    "grading_system": "ICANS grading system",
    "sub_indication": "Indication",
}
# Fewer studies than this and a meta-regression slope is not estimated (intercept + slope need
# at least one residual degree of freedom; metafor would fit k = 3 but with no information).
MIN_STUDIES_FOR_REGRESSION = 3


@dataclass(frozen=True)
class OutcomeAnalysis:
    """One outcome in one slice: the rows pooled and the result (None when there is no study)."""

    outcome: str
    rows: pd.DataFrame
    result: PoolResult | None
    message: str | None
    # Where the rows came from (data version and slice), set by the caching layer: together with
    # the outcome it identifies the analysis, so a cache can key on it without hashing the rows.
    origin: str = ""

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self.outcome]

    def forest_records(self) -> list[dict[str, object]]:
        """Per-cohort rows joined with the engine's per-study numbers, plus the pooled row (none
        with one study: nothing is pooled). Plain dicts: the chart reads a handful of rows, and
        a DataFrame round trip cost more than the rest of building its spec."""
        if self.result is None:
            return []
        *studies, pooled = self.result.to_records()
        columns = ("cohort_id", "study_id", "label", "quote", "locator", "source")
        keys = zip(*(self.rows[column].tolist() for column in columns), strict=True)
        records = [
            {**study, **dict(zip(columns, key, strict=True))}
            for study, key in zip(studies, keys, strict=True)
        ]
        if self.result.k >= 2:
            records.append({**pooled, **dict.fromkeys(columns[:2] + columns[3:])})
        return records

    def forest_frame(self) -> pd.DataFrame:
        """`forest_records` as a table (for exports and tests)."""
        return pd.DataFrame(self.forest_records())


def cohort_slice(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Anakinra cohorts in the slice (one row per cohort)."""
    return db.run(con, "cohort_slice", **filters.sql_params())


def slice_summary(cohorts: pd.DataFrame) -> dict[str, int]:
    """Counts a caption needs: studies, cohorts, patients (and cohorts whose n is unknown)."""
    n = cohorts["n_patients"]
    return {
        "studies": int(cohorts["study_id"].nunique()),
        "cohorts": len(cohorts),
        "patients": int(n.fillna(0).sum()),
        "cohorts_without_n": int(n.isna().sum()),
    }


def every_poolable_row(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The counts chosen for analysis in every cohort, every outcome (column `outcome`). Small
    (one row per cohort and outcome), so the dashboard reads it once per data version."""
    return db.run(con, "poolable_outcomes")


def in_slice(poolable: pd.DataFrame, cohorts: pd.DataFrame) -> pd.DataFrame:
    """The rows of `every_poolable_row` whose cohort is in the slice, in their order. The filters
    were applied by the slice's query; this only matches its cohort ids."""
    return poolable[poolable["cohort_id"].isin(cohorts["cohort_id"])].reset_index(drop=True)


def poolable_rows(con: duckdb.DuckDBPyConnection, cohorts: pd.DataFrame) -> pd.DataFrame:
    """The counts chosen for analysis in these cohorts, every outcome (column `outcome`)."""
    return in_slice(every_poolable_row(con), cohorts)


def rows_of(poolable: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """One outcome's rows of `poolable_rows`, in cohort-label order."""
    return poolable[poolable["outcome"] == outcome].reset_index(drop=True)


def pool_outcomes(
    counts: pd.DataFrame, outcomes: Sequence[str], filters: Filters, origin: str = ""
) -> tuple[OutcomeAnalysis, ...]:
    """Pool each of `outcomes` from one `poolable_rows` frame. The frame is split once: a mask
    per outcome copies every column each time (~1 ms an outcome with pandas' Arrow strings)."""
    groups = {code: rows.reset_index(drop=True) for code, rows in counts.groupby("outcome")}
    empty = counts.iloc[0:0]
    return tuple(
        replace(pool_rows(code, groups.get(code, empty), filters), origin=origin)
        for code in outcomes
    )


def outcome_rows(
    con: duckdb.DuckDBPyConnection, cohorts: pd.DataFrame, outcome: str
) -> pd.DataFrame:
    """The counts chosen for analysis for `outcome` in these cohorts."""
    return rows_of(poolable_rows(con, cohorts), outcome)


def analyse_outcome(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    outcome: str,
    cohorts: pd.DataFrame | None = None,
) -> OutcomeAnalysis:
    """Pool one outcome over the slice with the method the filters name."""
    cohorts = cohort_slice(con, filters) if cohorts is None else cohorts
    rows = outcome_rows(con, cohorts, outcome)
    return pool_rows(outcome, rows, filters)


def pool_rows(outcome: str, rows: pd.DataFrame, filters: Filters) -> OutcomeAnalysis:
    if rows.empty:
        message = f"No study in this slice reports {OUTCOME_LABELS[outcome].lower()} as a count."
        return OutcomeAnalysis(outcome, rows, None, message)
    result = pool_proportions(
        rows["events"].to_numpy(dtype=int),
        rows["total"].to_numpy(dtype=int),
        labels=rows["label"].tolist(),
        **filters.pooling_arguments(),
    )
    return OutcomeAnalysis(outcome, rows, result, plain_message(result))


def plain_message(result: PoolResult) -> str | None:
    """What a reader must know before trusting the pooled number, in one sentence or None."""
    if result.k == 1:
        return "Only one study: its own estimate is shown, nothing is pooled."
    if result.fallback_reason:
        return f"The GLMM did not converge ({result.fallback_reason}); logit-REML is shown instead."
    if result.k == 2:
        return "Only two studies: the pooled estimate and its heterogeneity are very uncertain."
    return None


def subgroup_labels(rows: pd.DataFrame, dimension: str) -> list[str]:
    """The subgroup each cohort falls in, in words (a multi-product cohort is its own group)."""
    if dimension == "product":
        products = rows["products"].fillna("")
        return [
            "not reported" if not p else ("several products" if ";" in p else p) for p in products
        ]
    names = {"dose_band": DOSE_BANDS, "grading_system": GRADING, "sub_indication": INDICATIONS}[
        dimension
    ]
    return [names.get(v, v) for v in rows[dimension]]


def analyse_subgroups(
    analysis: OutcomeAnalysis, dimension: str, filters: Filters
) -> SubgroupResult | None:
    """Pooled estimate per subgroup and the test for subgroup differences (None if k < 2)."""
    if analysis.result is None or len(analysis.rows) < 2:
        return None
    rows = analysis.rows
    return subgroup_analysis(
        rows["events"].to_numpy(dtype=int),
        rows["total"].to_numpy(dtype=int),
        subgroup_labels(rows, dimension),
        labels=rows["label"].tolist(),
        **filters.pooling_arguments(),
    )


def dose_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Cohorts with a mg/day dose: the midpoint of their reported range is the moderator."""
    known = rows.dropna(subset=["dose_mg_day_min", "dose_mg_day_max"]).copy()
    known["dose_mid"] = (known["dose_mg_day_min"] + known["dose_mg_day_max"]) / 2
    known["proportion"] = known["events"] / known["total"]
    return known


def dose_regression(rows: pd.DataFrame, filters: Filters) -> MetaRegressionResult | None:
    """Meta-regression of the outcome on anakinra mg/day (logit, REML), if enough cohorts."""
    points = dose_points(rows)
    if len(points) < MIN_STUDIES_FOR_REGRESSION or points["dose_mid"].nunique() < 2:
        return None
    ci = "hksj" if filters.pooling_arguments()["ci"] == "hksj" else "z"
    return meta_regression(
        points["events"].to_numpy(dtype=int),
        points["total"].to_numpy(dtype=int),
        points["dose_mid"].to_numpy(dtype=float),
        method="REML",
        transform="logit",
        ci=ci,
    )


def regression_line(result: MetaRegressionResult, points: pd.DataFrame) -> pd.DataFrame:
    """The fitted line with its CI over the observed dose range, for a chart."""
    grid = np.linspace(points["dose_mid"].min(), points["dose_mid"].max(), 50)
    line = result.fitted_line(grid)
    return pd.DataFrame(
        {"x": line.x, "estimate": line.estimate, "ci_low": line.ci_low, "ci_high": line.ci_high}
    )


def subgroup_records(result: SubgroupResult) -> list[dict[str, object]]:
    """One row per subgroup (pooled estimate and CI), for the subgroup chart: plain dicts, since
    a DataFrame round trip cost ~2.4 ms a chart and everything else about its rows ~0.1 ms."""
    return [
        {
            "subgroup": group.name,
            "k": group.result.k,
            "patients": group.result.n_total,
            "estimate": group.result.estimate,
            "ci_low": group.result.ci_low,
            "ci_high": group.result.ci_high,
            "method": group.result.method,
        }
        for group in result.subgroups
    ]


def subgroup_frame(result: SubgroupResult) -> pd.DataFrame:
    """`subgroup_records` as a table, for a chart built whole by `charts.subgroup_plot`."""
    return pd.DataFrame(subgroup_records(result))


def within_study_dose_comparisons(
    rows: pd.DataFrame,
) -> tuple[pd.DataFrame, ComparisonResult | None]:
    """Higher vs lower dose cohorts of the same study (Mantel-Haenszel risk ratio across studies).

    Only comparisons made inside one study are pooled, so patients are compared with patients
    from the same centre and period; between-study dose differences are the regression's job.
    """
    rows = rows.dropna(subset=["dose_mg_day_max"])
    pairs = []
    for study_id, group in rows.groupby("study_id"):
        if len(group) < 2 or group["dose_mg_day_max"].nunique() < 2:
            continue
        ordered = group.sort_values("dose_mg_day_max")
        low, high = ordered.iloc[0], ordered.iloc[-1]
        pairs.append(
            {
                "study_id": study_id,
                "high_label": high["label"],
                "high_events": int(high["events"]),
                "high_total": int(high["total"]),
                "low_label": low["label"],
                "low_events": int(low["events"]),
                "low_total": int(low["total"]),
            }
        )
    table = pd.DataFrame(pairs)
    if table.empty:
        return table, None
    result = compare_groups(
        table["high_events"].to_numpy(),
        table["high_total"].to_numpy(),
        table["low_events"].to_numpy(),
        table["low_total"].to_numpy(),
        measure="RR",
        method="MH",
        labels=table["study_id"].tolist(),
    )
    return table, result


def comparator_table(
    con: duckdb.DuckDBPyConnection, cohorts: pd.DataFrame, outcome: str
) -> tuple[pd.DataFrame, ComparisonResult | None]:
    """Anakinra cohorts beside their own comparator cohorts; pooled MH risk ratio where both
    sides give counts (percent-only figures are shown but cannot be pooled)."""
    ids = cohorts["cohort_id"].tolist()
    treated = db.run(con, "outcome_rows", cohort_ids=ids)
    treated = treated[(treated["outcome"] == outcome) & treated["use_in_analysis"]]
    controls = db.run(con, "comparator_outcomes", cohort_ids=ids)
    controls = controls[controls["outcome"] == outcome]
    merged = treated.merge(controls, on="cohort_id", suffixes=("", "_comparator"))
    counted = merged.dropna(subset=["events", "total", "events_comparator", "total_comparator"])
    if counted.empty:
        return merged, None
    result = compare_groups(
        counted["events"].to_numpy(dtype=int),
        counted["total"].to_numpy(dtype=int),
        counted["events_comparator"].to_numpy(dtype=int),
        counted["total_comparator"].to_numpy(dtype=int),
        measure="RR",
        method="MH",
        labels=counted["label"].tolist(),
    )
    return merged, result
