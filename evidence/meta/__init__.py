"""Meta-analysis engine of the anakinra-for-ICANS evidence dashboard.

Pooled numbers from this package are read aloud in guideline meetings, so every
inverse-variance and Mantel-Haenszel result reproduces R ``metafor`` 3.8-1 to floating-point
precision (checked against ``tests/reference/golden_iv.json``, produced by
``tests/reference/iv_reference.R``). Where metafor would stop with an error, this package shows
a clearly labelled fallback instead of crashing, and says why.

Vocabulary
----------
study
    One publication or report. It may contain several cohorts.
cohort
    A group of patients analysed together (e.g. "axi-cel, prophylactic anakinra"). The unit
    of analysis: one row = one cohort, called a "study" in the functions below, as in metafor.
event
    A patient with the outcome of interest (ICANS response, grade ≥ 3 ICANS, death...).
proportion
    events / total in a cohort. Shown per cohort with an exact Clopper-Pearson 95% CI.
tau² (tau2)
    Between-cohort variance of the true (model-scale) proportions: how much the true rates
    differ beyond chance. On the logit scale for the GLMM and logit models.
    ``PoolResult.tau2_ci`` is its Q-profile 95% CI (Viechtbauer 2007; metafor
    ``confint``), which Cochrane now recommends reporting.
I²
    Percentage of total variability due to between-cohort heterogeneity, computed as metafor
    does: 100·tau² / (tau² + typical within-study variance). Not an absolute measure; with few
    cohorts it is very uncertain.
prediction interval
    Where the true proportion of a *new* comparable cohort is expected to lie (95%). metafor's
    definition: estimate ± crit·sqrt(SE² + tau²), crit = z for Wald intervals, t with k-1 df
    for HKSJ (not the k-2 of Higgins et al. 2009 used by R meta).

Interfaces
----------
``pool_proportions(events, totals, method="GLMM"|"REML"|"DL"|"ML"|"PM",
transform="logit"|"freeman-tukey", ci="z"|"hksj"|"hksj-adhoc", labels=None) -> PoolResult``
    Pooled single proportion. ``PoolResult.to_frame()`` gives studies + pooled row.
``leave_one_out(events, totals, method, transform, ci, labels) -> LeaveOneOut``
    As metafor ``leave1out`` (one row per study left out, as columns), in O(k).
``compare_groups(events_a, totals_a, events_b, totals_b, measure="OR"|"RR",
method="MH"|"REML"|"DL", labels=None, ci="z") -> ComparisonResult``
    Two-group OR/RR, ``rma.mh`` or ``rma(measure=...)``.
``subgroup_analysis(events, totals, groups, method, transform, ci, labels) -> SubgroupResult``
    Per-subgroup pools, metafor's moderator test (common tau²) and the separate-tau² Q between.
``meta_regression(events, totals, moderator, method="REML", transform="logit", ci="z",
labels=None) -> MetaRegressionResult``
    ``rma(yi, vi, mods = ~ x)``; ``.fitted_line(x_grid)`` as ``predict(newmods=)``.

Results are frozen records that nest (``results.py``): a pooled proportion is
``result.proportion`` (estimate, ``ci``, ``pi`` intervals) for people and ``result.model`` on the
logit or Freeman-Tukey scale for checking against R; each test is a ``QTest``
(``result.heterogeneity.p_value``).

Methods
-------
Which model is used when, and why, is set out in the project's methods document,
``docs/methods.md``.
"""

from .comparisons import compare_groups
from .effect_sizes import CONTINUITY_CORRECTION, LEVEL
from .proportions import leave_one_out, pool_proportions
from .regression import meta_regression
from .results import (
    Coefficient,
    ComparisonResult,
    Curve,
    FittedLine,
    Interval,
    LeaveOneOut,
    MetaRegressionResult,
    PoolResult,
    QTest,
    Scaled,
    StudyComparison,
    StudyEstimate,
    SubgroupPool,
    SubgroupResult,
)
from .subgroups import subgroup_analysis

__all__ = [
    "CONTINUITY_CORRECTION",
    "LEVEL",
    "Coefficient",
    "ComparisonResult",
    "Curve",
    "FittedLine",
    "Interval",
    "LeaveOneOut",
    "MetaRegressionResult",
    "PoolResult",
    "QTest",
    "Scaled",
    "StudyComparison",
    "StudyEstimate",
    "SubgroupPool",
    "SubgroupResult",
    "compare_groups",
    "leave_one_out",
    "meta_regression",
    "pool_proportions",
    "subgroup_analysis",
]
