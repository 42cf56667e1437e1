"""From a slice to the numbers a page shows: the slice's cohorts, its counts, pooled results.

This is the seam between the data layer (named queries) and the engine (evidence.meta). The
dashboard's data facade (evidence.ui.data) calls these functions and caches what they return;
tests call the same functions. Nothing here imports Streamlit, and nothing here knows about
caches.

Vocabulary: a *study* is one report; a *cohort* is a group of patients within it (a dose level,
a sub-indication); pooling is over cohorts, one row per cohort, and a cohort appears once even
when several reports describe it (`studies.same_patients_as`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from evidence import db, vocab
from evidence.filters import Slice
from evidence.meta.comparisons import compare_groups
from evidence.meta.effect_sizes import clopper_pearson_many
from evidence.meta.proportions import pool_proportions
from evidence.meta.regression import meta_regression
from evidence.meta.results import (
    ComparisonResult,
    MetaRegressionResult,
    PoolResult,
    SubgroupResult,
)
from evidence.meta.subgroups import subgroup_analysis

# Fewer studies than this and a meta-regression slope is not estimated (intercept + slope need
# at least one residual degree of freedom; metafor would fit k = 3 but with no information).
MIN_STUDIES_FOR_REGRESSION = 3
#: Above this many studies an outcome's per-study forest plot gives way to summaries of a large
#: evidence base (`large_view`): a forest plot of more rows does not fit a screen or a slide, and
#: at thousands of rows its scale and pooled row are many screens away from most of its studies.
LARGE_FOREST_STUDIES = 40
#: Studies listed as outliers in the large view (those furthest from the pooled estimate).
OUTLIERS_SHOWN = 10


@dataclass(frozen=True)
class OutcomeAnalysis:
    """One outcome in one slice: the rows pooled, the pooling method asked for (a code of
    vocab.POOLING_METHODS) and the result (None when no study reports the outcome as counts)."""

    outcome: str
    method: str
    rows: pd.DataFrame
    result: PoolResult | None
    message: str | None

    @property
    def label(self) -> str:
        return vocab.OUTCOMES.label(self.outcome)

    def forest_records(self) -> list[dict[str, object]]:
        """Per-cohort rows joined with the engine's per-study numbers, plus the pooled row (none
        with one study: nothing is pooled)."""
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


def mark_several_products(
    records: list[dict[str, object]], rows: pd.DataFrame
) -> list[dict[str, object]]:
    """Forest rows whose cohort holds several products say so in their label ("Beta 2021 —
    axi-cel + tisa-cel, split not reported"): in a product slice such a cohort counts for each
    of its products, though its results are not reported per product."""
    products = dict(zip(rows["cohort_id"], rows["products"], strict=True))
    marked = []
    for record in records:
        held = products.get(record.get("cohort_id"))
        if isinstance(held, str) and ";" in held:
            names = " + ".join(held.split(";"))
            record = {**record, "label": f"{record['label']} — {names}, split not reported"}
        marked.append(record)
    return marked


def cohort_slice(con: duckdb.DuckDBPyConnection, rows: Slice) -> pd.DataFrame:
    """Anakinra cohorts in the slice (one row per cohort)."""
    return db.run(con, "cohort_slice", **rows.sql_params())


@dataclass(frozen=True)
class SliceSummary:
    """What a caption says of a slice: studies, cohorts, patients where reported, and cohorts
    whose number of patients no source gives."""

    studies: int
    cohorts: int
    patients: int
    cohorts_without_n: int


def slice_summary(cohorts: pd.DataFrame) -> SliceSummary:
    n = cohorts["n_patients"]
    return SliceSummary(
        studies=int(cohorts["study_id"].nunique()),
        cohorts=len(cohorts),
        patients=int(n.fillna(0).sum()),
        cohorts_without_n=int(n.isna().sum()),
    )


def every_poolable_row(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The counts chosen for analysis in every cohort, every outcome (column `outcome`). Small
    (one row per cohort and outcome), so the dashboard reads it once per data version."""
    return db.run(con, "poolable_outcomes")


def in_slice(poolable: pd.DataFrame, cohorts: pd.DataFrame) -> pd.DataFrame:
    """The rows of `every_poolable_row` whose cohort is in the slice, in their order. The filters
    were applied by the slice's query; this only matches its cohort ids, by Arrow's hash lookup
    (pandas' isin on Arrow-backed strings takes 100 times as long at 10,000 cohorts)."""
    keep = pc.is_in(
        pa.array(poolable["cohort_id"], type=pa.string()),
        value_set=pa.array(cohorts["cohort_id"], type=pa.string()),
    )
    return poolable[keep.to_numpy(zero_copy_only=False)].reset_index(drop=True)


def counts_by_outcome(counts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A slice's counts (rows of `every_poolable_row`) split by outcome, each in cohort-label
    order and indexed from 0."""
    return {code: rows.reset_index(drop=True) for code, rows in counts.groupby("outcome")}


def pool(outcome: str, rows: pd.DataFrame, method: str) -> OutcomeAnalysis:
    """Pool one outcome's counts with a method of vocab.POOLING_METHODS."""
    if rows.empty:
        label = in_sentence(vocab.OUTCOMES.label(outcome))
        return OutcomeAnalysis(
            outcome, method, rows, None, f"No study in this slice reports {label} as a count."
        )
    result = pool_proportions(
        rows["events"].to_numpy(dtype=int),
        rows["total"].to_numpy(dtype=int),
        labels=rows["label"].tolist(),
        **vocab.POOLING_ARGUMENTS[method],
    )
    return OutcomeAnalysis(outcome, method, rows, result, plain_message(result))


def in_sentence(label: str) -> str:
    """A label inside a sentence: its first letter in lower case unless the first word is an
    abbreviation ("ICANS resolution" stays, "Any-grade ICANS" becomes "any-grade ICANS")."""
    first = label.split(" ", 1)[0]
    return label if first.isupper() else label[:1].lower() + label[1:]


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
            vocab.PRODUCT_CHOICES.label("not_reported")
            if not p
            else (vocab.PRODUCT_CHOICES.label("mixed") if ";" in p else vocab.PRODUCTS.label(p))
            for p in products
        ]
    return [vocab.SUBGROUP_VOCABULARIES[dimension].label(v) for v in rows[dimension]]


def analyse_subgroups(analysis: OutcomeAnalysis, dimension: str) -> SubgroupResult | None:
    """Pooled estimate per subgroup and the test for subgroup differences (None if k < 2)."""
    if analysis.result is None or len(analysis.rows) < 2:
        return None
    rows = analysis.rows
    return subgroup_analysis(
        rows["events"].to_numpy(dtype=int),
        rows["total"].to_numpy(dtype=int),
        subgroup_labels(rows, dimension),
        labels=rows["label"].tolist(),
        whole=analysis.result,  # pooled with the same arguments and labels just above
        **vocab.POOLING_ARGUMENTS[analysis.method],
    )


def dose_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Cohorts with a mg/day dose: the midpoint of their reported range is the moderator."""
    known = rows.dropna(subset=["dose_mg_day_min", "dose_mg_day_max"]).copy()
    known["dose_mid"] = (known["dose_mg_day_min"] + known["dose_mg_day_max"]) / 2
    known["proportion"] = known["events"] / known["total"]
    return known


def can_regress_on_dose(points: pd.DataFrame) -> bool:
    """Whether `dose_points` can carry a meta-regression: enough cohorts at different doses."""
    return len(points) >= MIN_STUDIES_FOR_REGRESSION and points["dose_mid"].nunique() >= 2


def dose_regression(analysis: OutcomeAnalysis) -> MetaRegressionResult | None:
    """Meta-regression of the outcome on anakinra mg/day (logit, REML; Hartung-Knapp when the
    pooling method uses it), if `can_regress_on_dose`."""
    points = dose_points(analysis.rows)
    if not can_regress_on_dose(points):
        return None
    ci = "hksj" if vocab.POOLING_ARGUMENTS[analysis.method]["ci"] == "hksj" else "z"
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
        {
            "x": line.x,
            "estimate": line.proportion.estimate,
            "ci_low": line.proportion.ci_low,
            "ci_high": line.proportion.ci_high,
        }
    )


def subgroup_records(result: SubgroupResult) -> list[dict[str, object]]:
    """One row per subgroup (pooled estimate and CI), for the subgroup chart."""
    return [
        {
            "subgroup": group.name,
            "k": group.result.k,
            "patients": group.result.n_total,
            "estimate": group.result.proportion.estimate,
            "ci_low": group.result.proportion.ci.low,
            "ci_high": group.result.proportion.ci.high,
            "method": group.result.method,
        }
        for group in result.subgroups
    ]


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
    con: duckdb.DuckDBPyConnection, cohort_ids: Sequence[str], outcome: str
) -> tuple[pd.DataFrame, ComparisonResult | None]:
    """Anakinra cohorts beside their own comparator cohorts; pooled MH risk ratio where both
    sides give counts (percent-only figures are shown but cannot be pooled)."""
    ids = list(cohort_ids)
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


# ---- a large evidence base ------------------------------------------------------------------
def is_large(analysis: OutcomeAnalysis) -> bool:
    """Whether the outcome has too many studies for a per-study forest plot."""
    return analysis.result is not None and analysis.result.k > LARGE_FOREST_STUDIES


def pooled_record(result: PoolResult) -> dict[str, object]:
    """The pooled row of the summary charts: estimate, CI and prediction interval (proportion
    scale) and k."""
    p = result.proportion
    return {
        "estimate": p.estimate, "ci_low": p.ci.low, "ci_high": p.ci.high,
        "pi_low": p.pi.low, "pi_high": p.pi.high, "k": result.k,
    }  # fmt: skip


def study_table(analysis: OutcomeAnalysis) -> pd.DataFrame:
    """One row per study of the pooled outcome, as columns (no per-study Python): what the
    paginated table shows, and the standardized deviation from the pooled estimate,
    z = (y_i - mu) / sqrt(v_i + tau²) on the model scale (the deviate of a study under the
    random-effects model, Viechtbauer & Cheung 2010, Res Synth Methods 1:112, without the
    hat-value adjustment, which is below 1/k here)."""
    assert analysis.result is not None
    result, rows = analysis.result, analysis.rows
    studies = result.studies
    yi, vi = studies.column("yi"), studies.column("vi")
    tau2 = result.tau2 or 0.0
    mu = result.model.estimate
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (yi - mu) / np.sqrt(vi + tau2) if mu is not None else np.full(yi.size, np.nan)
    return pd.DataFrame(
        {
            "study_id": rows["study_id"].to_numpy(),
            "label": rows["label"].to_numpy(),
            "events": studies.column("events").astype(int),
            "total": studies.column("total").astype(int),
            "proportion": studies.column("proportion"),
            "weight": studies.column("weight"),
            "deviation": z,
            "yi": yi,
            "se": np.sqrt(vi),
        }
    )


def outliers(table: pd.DataFrame, shown: int = OUTLIERS_SHOWN) -> pd.DataFrame:
    """The studies furthest from the pooled estimate (largest |standardized deviation|)."""
    order = np.argsort(-np.abs(table["deviation"].to_numpy(dtype=float)), kind="stable")
    return table.iloc[order[:shown]]


def with_exact_ci(page: pd.DataFrame) -> pd.DataFrame:
    """A page of `study_table` with each study's Clopper-Pearson 95% CI (computed for the rows
    shown only)."""
    low, high = clopper_pearson_many(page["events"].to_numpy(), page["total"].to_numpy())
    return page.assign(ci_low=low, ci_high=high)
