"""Subgroup analysis (e.g. by CAR-T product, by ICANS grading scale, by dose schedule).

Two tests for subgroup differences are reported because they answer slightly different
questions and published reviews use both:

* ``moderator_test`` — metafor's mixed-effects moderator test QM,
  ``rma(yi, vi, mods = ~ factor(g))``: one tau² *common to all subgroups* (residual
  heterogeneity) is estimated, then the subgroup coefficients are tested jointly (chi² with
  G-1 df for ``ci="z"``, F(G-1, k-G) for HKSJ).
* ``separate_tau2_test`` — each subgroup pooled on its own (its own tau²), then Cochran's Q of
  the subgroup estimates with 1/SE² weights, chi² with G-1 df (R meta's default,
  ``tau.common = FALSE``; Borenstein et al. 2009, ch. 19).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import distributions
from .effect_sizes import as_counts, freeman_tukey, logit_proportion
from .heterogeneity import fit_rma_or_dl
from .options import TEST_FOR_CI, study_labels, validate_pooling
from .proportions import pool_proportions
from .results import PoolResult, QTest, SubgroupPool, SubgroupResult, clean


def subgroup_analysis(
    events: ArrayLike,
    totals: ArrayLike,
    groups: Sequence[object],
    method: str = "REML",
    transform: str = "logit",
    ci: str = "z",
    labels: Sequence[str] | None = None,
    whole: PoolResult | None = None,
) -> SubgroupResult:
    """Pool each subgroup and test whether the subgroups differ.

    The mixed-effects test (``moderator_test``) assumes one tau² shared by all subgroups, as metafor
    does; with method="GLMM" the subgroup pools are GLMMs but this test is fitted with logit
    inverse-variance REML (rma.glmm moderators are not part of this engine), which the notes
    say. Subgroups with a single study are flagged (``single_study``) and shown unpooled.

    ``whole``: the pool of all the studies with the same method, transform, ci and labels, if the
    caller has it: a subgroup that holds every study (a slice of one product split by product)
    is that pool, so it is not fitted again.
    """
    validate_pooling(method, transform, ci)
    x, n = as_counts(events, totals)
    g = [str(v) for v in groups]
    if len(g) != x.size:
        raise ValueError(f"{len(g)} group labels for {x.size} studies")
    labs = study_labels(labels, x.size)
    levels = list(dict.fromkeys(g))  # order of first appearance, for display
    notes: list[str] = []

    g_arr = np.asarray(g)  # compared as one array per level, not study by study
    member = {level: g_arr == level for level in levels}
    pools = []
    for level in levels:
        idx = np.flatnonzero(member[level]).tolist()
        if whole is not None and len(idx) == x.size:
            res = whole
        else:
            res = pool_proportions(
                x[idx],
                n[idx],
                method=method,
                transform=transform,
                ci=ci,
                labels=[labs[i] for i in idx],
            )
        pools.append(SubgroupPool(name=level, result=res, single_study=len(idx) == 1))
        if len(idx) == 1:
            notes.append(f"Subgroup '{level}' has one study: shown unpooled.")

    # --- separate-tau² Q between subgroup estimates ---
    est = [p.result.model.estimate for p in pools]
    se = [p.result.se for p in pools]
    separate = QTest()
    if len(pools) >= 2 and all(e is not None for e in est) and all(s for s in se):
        e_arr = np.asarray(est, dtype=float)
        w = 1 / np.asarray(se, dtype=float) ** 2
        mean = float(np.sum(w * e_arr) / np.sum(w))
        qb = float(np.sum(w * (e_arr - mean) ** 2))
        qb_df = len(pools) - 1
        separate = QTest(qb, qb_df, float(distributions.chi2_sf(qb, qb_df)))

    # --- metafor mixed-effects moderator test (common tau²) ---
    iv_method = "REML" if method == "GLMM" else method
    iv_transform = "logit" if method == "GLMM" else transform
    if method == "GLMM":
        notes.append(
            "Test for subgroup differences (common tau²) fitted with logit inverse-variance "
            "REML; the subgroup pools themselves are GLMMs."
        )
    yi, vi = logit_proportion(x, n) if iv_transform == "logit" else freeman_tukey(x, n)
    k, n_levels = x.size, len(levels)
    distribution = "F" if ci != "z" else "chi2"
    moderator, residual = QTest(distribution=distribution), QTest()
    tau2 = i2 = None
    if n_levels < 2:
        notes.append("Only one subgroup: no test for subgroup differences.")
    elif k <= n_levels:
        notes.append("Too few studies per subgroup to estimate a common tau² and test.")
    else:
        design = np.column_stack([np.ones(k)] + [member[lev].astype(float) for lev in levels[1:]])
        test = TEST_FOR_CI[ci]
        fit, reason = fit_rma_or_dl(
            yi, vi, design, method=iv_method, test=test, instead="DL used for the test"
        )
        if reason is not None:
            notes.append(reason)
        qm_df, qm_df2 = fit.qm_df
        moderator = QTest(clean(fit.qm), qm_df, clean(fit.qm_p), qm_df2, distribution)
        residual = QTest(fit.qe, fit.qe_df, fit.qe_p)
        tau2, i2 = fit.tau2, fit.i2

    return SubgroupResult(
        subgroups=tuple(pools),
        moderator_test=moderator,
        tau2_common=tau2,
        i2_residual=i2,
        residual_heterogeneity=residual,
        separate_tau2_test=separate,
        method=method,
        transform=transform,
        ci_method=ci,
        notes=tuple(notes),
    )
