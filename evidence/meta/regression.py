"""Random-effects meta-regression of a proportion on one study-level moderator.

Typical use here: does the ICANS response rate change with anakinra dose, timing, or study
size (a small-study check)? With the k of this field (often < 10) the slope is very imprecise;
the notes say so, and HKSJ (``ci="hksj"``) is the safer interval (Cochrane Handbook §10.11.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .effect_sizes import as_counts, freeman_tukey, harmonic_mean, logit_proportion
from .heterogeneity import fit_rma_or_dl
from .options import CI_METHODS, TEST_FOR_CI, TRANSFORMS, check_choice, study_labels
from .proportions import NOTE_PFT
from .results import Coefficient, Interval, MetaRegressionResult, QTest, clean, study_estimates

REG_METHODS = ("REML", "DL", "ML", "PM")
#: Borenstein et al. (2009, ch. 20): about 10 studies per moderator before trusting a slope.
MIN_K_PER_MODERATOR = 10


def meta_regression(
    events: ArrayLike,
    totals: ArrayLike,
    moderator: ArrayLike,
    method: str = "REML",
    transform: str = "logit",
    ci: str = "z",
    labels: Sequence[str] | None = None,
) -> MetaRegressionResult:
    """Fit ``rma(yi, vi, mods = ~ moderator, method=, test=)`` (metafor 3.8-1).

    ``fitted_line(x_grid)`` on the result gives ``predict(fit, newmods = x_grid)``
    back-transformed to proportions (ilogit, or transf.ipft.hm with the harmonic mean n of
    all studies for Freeman-Tukey).
    """
    check_choice("method", method, REG_METHODS)
    check_choice("transform", transform, TRANSFORMS)
    check_choice("ci", ci, CI_METHODS)
    x, n = as_counts(events, totals)
    mod = np.asarray(moderator, dtype=float).ravel()
    if mod.shape != x.shape:
        raise ValueError(f"{mod.size} moderator values for {x.size} studies")
    if not np.all(np.isfinite(mod)):
        raise ValueError("moderator values must be finite (drop studies without a value first)")
    labs = study_labels(labels, x.size)
    yi, vi = logit_proportion(x, n) if transform == "logit" else freeman_tukey(x, n)
    notes: list[str] = []
    if transform == "freeman-tukey":
        notes.append(NOTE_PFT)
    k = x.size
    moderators = tuple(map(float, mod))
    if k < 3:
        unfit = "Meta-regression needs at least 3 studies (2 coefficients + 1)."
    elif np.ptp(mod) == 0:
        unfit = "The moderator has the same value in every study: no slope to estimate."
    else:
        unfit = ""
    if unfit:
        studies = study_estimates(labs, x, n, yi, vi, None)
        return MetaRegressionResult.empty(
            method, transform, ci, (*notes, unfit), studies, moderators
        )
    if k < MIN_K_PER_MODERATOR:
        notes.append(
            f"Only {k} studies for one moderator (fewer than ~{MIN_K_PER_MODERATOR}): the slope "
            "is very imprecise and prone to ecological bias."
        )
    design = np.column_stack([np.ones(k), mod])
    fit, reason = fit_rma_or_dl(yi, vi, design, method=method, test=TEST_FOR_CI[ci])
    if reason is not None:
        notes.append(reason)
    qm_df, qm_df2 = fit.qm_df
    coefficients = [
        Coefficient(
            clean(fit.beta[j]),
            clean(fit.se[j]),
            Interval(clean(fit.ci_lb[j]), clean(fit.ci_ub[j])),
            clean(fit.pval[j]),
        )
        for j in (0, 1)
    ]
    return MetaRegressionResult(
        intercept=coefficients[0],
        slope=coefficients[1],
        tau2=fit.tau2,
        i2=fit.i2,
        h2=fit.h2,
        residual_heterogeneity=QTest(fit.qe, fit.qe_df, fit.qe_p),
        moderator_test=QTest(
            clean(fit.qm), qm_df, clean(fit.qm_p), qm_df2, "chi2" if ci == "z" else "F"
        ),
        k=k,
        method=fit.method,
        transform=transform,
        ci_method=ci,
        notes=tuple(notes),
        studies=study_estimates(labs, x, n, yi, vi, fit.weights),
        moderator=moderators,
        n_harmonic=harmonic_mean(n) if transform == "freeman-tukey" else None,
        fit=fit,
    )
