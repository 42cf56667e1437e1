"""GRADE certainty for one row of a summary of findings: a suggestion per domain from the data,
the panel's decision, the certainty that follows.

A GRADE rating is a judgement, not a score, so every rule here only *suggests*: each domain shows
the figures behind it, a suggested level and a one-line reason, and the panel may set another
level with a reason of its own. The rules are the dashboard's documented defaults (docs/methods.md
"Certainty of evidence"), built on GRADE's guidance:

- starting level by framing: event rates in treated patients are evidence on overall prognosis
  (Iorio et al., BMJ 2015;350:h870; GRADE 28), which starts High; comparisons from non-randomised
  cohorts start Low (Core GRADE 4);
- a domain with no data to judge it is `not_assessable`, never "no concern", and a row with such a
  domain undecided is "not yet graded" rather than defaulting upward (the failure mode of the
  open-source auto-graders);
- inconsistency is never rated from I² alone (GRADE 36); imprecision uses the confidence interval
  against the panel's thresholds first (GRADE 34/35), an information-size analogue or the
  interval's half-width when none is set; funnel-plot tests need k ≥ 10.

Nothing here reads a database or imports Streamlit: `evidence.sof` gathers the inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["not_serious", "serious", "very_serious", "not_assessable"]
LEVELS: tuple[Level, ...] = ("not_serious", "serious", "very_serious", "not_assessable")
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
DOMAIN_LABELS = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}
LEVEL_LABELS = {
    "not_serious": "not serious",
    "serious": "serious",
    "very_serious": "very serious",
    "not_assessable": "not assessable",
}
# Publication bias is "detected" or not, in GRADE's own words.
PUBLICATION_BIAS_LABELS = {
    "not_serious": "undetected",
    "serious": "strongly suspected",
    "very_serious": "very strongly suspected",
    "not_assessable": "not assessable",
}
RATED_DOWN = {"not_serious": 0, "serious": 1, "very_serious": 2}

Framing = Literal["event_rate", "comparative"]
START = {"event_rate": 4, "comparative": 2}
FRAMING_WORDS = {
    "event_rate": (
        "Rate among treated patients (GRADE overall prognosis: starts High). It describes what "
        "happened with anakinra, not an effect of anakinra against no anakinra."
    ),
    "comparative": (
        "Comparison between cohorts that were not randomised (starts Low): confounding can "
        "explain part or all of a difference."
    ),
}
CERTAINTY_WORDS = {4: "High", 3: "Moderate", 2: "Low", 1: "Very low"}

# [default] thresholds of the dashboard's own, shown as such and replaceable by the panel.
HALF_WIDTH_SERIOUS = 0.10  # imprecision without thresholds: 95% CI half-width on the proportion
HALF_WIDTH_VERY_SERIOUS = 0.20
PI_WIDTH_SERIOUS = 0.50  # inconsistency without thresholds: prediction interval width
I2_SERIOUS = 75.0  # with Q p < 0.10, and only beside another sign (GRADE 36)
Q_P_SERIOUS = 0.10
APPRECIABLE_RATIO = (0.75, 1.25)  # GRADE 6's rough guide for an appreciable relative effect
SHARE_CONCERNING = 0.5  # most of the information (patient-weighted)
FUNNEL_MIN_STUDIES = 10
SMALL_STUDY = 50


@dataclass(frozen=True)
class Suggestion:
    """A domain's suggested level, why, and the figures a reader checks it against."""

    domain: str
    level: Level
    reason: str
    figures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Decision:
    """The panel's level for one domain of one row, with its reason (a footnote)."""

    row: str
    domain: str
    level: Level
    reason: str


# A summary-of-findings row's id: its section and outcome ("treatment.icans_response",
# "compare.dose_treatment.early_mortality"); links carry it.
ROW_ID = re.compile(r"^[a-z]+(\.[a-z0-9_]+){1,2}$")
REASON_LIMIT = 300  # characters of a panel's reason a link carries


@dataclass(frozen=True)
class PanelSettings:
    """What the panel set for a summary of findings: domain decisions, thresholds per row
    (proportions, or risk ratios for comparisons), and the data version they were made on."""

    decisions: tuple[Decision, ...] = ()
    thresholds: tuple[tuple[str, float], ...] = ()
    data_version: str | None = None

    def thresholds_of(self, row: str) -> tuple[float, ...]:
        return tuple(sorted(value for key, value in self.thresholds if key == row))

    def decision(self, row: str, domain: str) -> Decision | None:
        return next((d for d in self.decisions if d.row == row and d.domain == domain), None)


@dataclass(frozen=True)
class Domain:
    """One domain of a row: the suggestion, the panel's decision if any, the level that counts."""

    suggestion: Suggestion
    decision: Decision | None = None

    @property
    def level(self) -> Level:
        return self.decision.level if self.decision else self.suggestion.level

    @property
    def decided_by_panel(self) -> bool:
        return self.decision is not None


@dataclass(frozen=True)
class Certainty:
    """The certainty a row's domains give, or None while a domain is not yet assessed."""

    start: int
    level: int | None
    unresolved: tuple[str, ...] = field(default=())

    @property
    def words(self) -> str:
        return "Not yet graded" if self.level is None else CERTAINTY_WORDS[self.level]


def certainty(framing: Framing, domains: Sequence[Domain]) -> Certainty:
    """Start by framing, rate down one per serious and two per very serious domain (GRADE's
    arithmetic as a default; the panel may set any domain), never below Very low."""
    start = START[framing]
    unresolved = tuple(d.suggestion.domain for d in domains if d.level == "not_assessable")
    if unresolved:
        return Certainty(start, None, unresolved)
    down = sum(RATED_DOWN[d.level] for d in domains)
    return Certainty(start, max(1, start - down))


def level_label(domain: str, level: Level) -> str:
    labels = PUBLICATION_BIAS_LABELS if domain == "publication_bias" else LEVEL_LABELS
    return labels[level]


# ---- risk of bias ------------------------------------------------------------------------------
# The checklist items whose answer decides a study's risk of bias, per tool [default]: for case
# series, consecutive and complete inclusion and a reliable, valid measurement of the condition and
# reporting of the outcome (JBI items Q2-Q5, Q8); for cohorts, confounding, outcome measurement
# and complete follow-up (JBI cohort items Q4, Q5, Q7, Q9).
CRITICAL_ITEMS = {"JBI_case_series": (2, 3, 4, 5, 8), "JBI_cohort": (4, 5, 7, 9)}
StudyRisk = Literal["low", "some concerns", "high", "not assessed"]


def study_risk(tool: str, answers: Mapping[int, str]) -> StudyRisk:
    """One study's risk of bias from its checklist answers (item number -> yes/no/unclear/...)."""
    critical = CRITICAL_ITEMS.get(tool)
    if critical is None or not answers:
        return "not assessed"
    decisive = [answers.get(item, "unclear") for item in critical]
    if "no" in decisive:
        return "high"
    if "unclear" in decisive:
        return "some concerns"
    return "low"


def suggest_risk_of_bias(
    studies: Sequence[tuple[str, StudyRisk, int]],
    estimate: float | None = None,
    without_high: float | None = None,
    thresholds: Sequence[float] = (),
) -> Suggestion:
    """From (study, risk, patients) of the pooled studies: the shares of patients by risk
    ("most information from low-risk studies" → not serious; otherwise serious; very serious when
    most patients come from high-risk studies and leaving those out leaves nothing, or moves the
    estimate across a threshold). `without_high` is the estimate without the high-risk studies
    (None when none would be left)."""
    total = sum(n for _, _, n in studies)
    if not studies or total == 0:
        return Suggestion("risk_of_bias", "not_assessable", "No study in this row.")
    share = {r: sum(n for _, risk, n in studies if risk == r) / total for r in _RISKS}
    figures = tuple((f"patients from studies {_RISK_WORDS[r]}", f"{share[r]:.0%}") for r in _RISKS)
    if without_high is not None and share["high"] > 0:
        figures = (*figures, ("estimate without high-risk studies", f"{without_high:.0%}"))
    if share["not assessed"] == 1:
        return Suggestion(
            "risk_of_bias",
            "not_assessable",
            "No study of this row has a quality appraisal to judge.",
            figures,
        )
    if share["high"] >= SHARE_CONCERNING:
        nothing_left = without_high is None
        moved = (
            estimate is not None
            and without_high is not None
            and _side(estimate, thresholds) != _side(without_high, thresholds)
        )
        if nothing_left or moved:
            why = (
                "no study at lower risk is left without them"
                if nothing_left
                else "leaving them out moves the estimate across a threshold"
            )
            return Suggestion(
                "risk_of_bias",
                "very_serious",
                f"{share['high']:.0%} of patients come from studies at high risk of bias, and "
                f"{why}.",
                figures,
            )
        return Suggestion(
            "risk_of_bias",
            "serious",
            f"{share['high']:.0%} of patients come from studies at high risk of bias.",
            figures,
        )
    if share["low"] >= SHARE_CONCERNING:
        return Suggestion(
            "risk_of_bias",
            "not_serious",
            f"Most information ({share['low']:.0%} of patients) is from studies at low risk.",
            figures,
        )
    return Suggestion(
        "risk_of_bias",
        "serious",
        f"Only {share['low']:.0%} of patients come from studies at low risk of bias "
        "(the rest: some concerns, high risk or not appraised).",
        figures,
    )


_RISKS: tuple[StudyRisk, ...] = ("low", "some concerns", "high", "not assessed")
_RISK_WORDS = {
    "low": "at low risk",
    "some concerns": "with some concerns",
    "high": "at high risk",
    "not assessed": "not appraised",
}


# ---- inconsistency -----------------------------------------------------------------------------
def suggest_inconsistency(
    k: int,
    studies: Sequence[tuple[float, float, float]],
    pi: tuple[float | None, float | None],
    i2: float | None,
    q_p: float | None,
    thresholds: Sequence[float] = (),
) -> Suggestion:
    """From the study estimates with their CIs (estimate, low, high), the prediction interval,
    I² and Q's p-value, against the panel's thresholds when it set any."""
    figures = (
        ("studies", str(k)),
        ("I²", "-" if i2 is None else f"{i2:.0f}%"),
        ("Q p", "-" if q_p is None else f"{q_p:.2f}"),
        ("prediction interval", _interval(pi)),
    )
    if k <= 1:
        return Suggestion(
            "inconsistency",
            "not_assessable",
            "A single study: how consistent the evidence is cannot be seen (GRADE rates a single "
            "study down unless it is large and multicentre).",
            figures,
        )
    disjoint = _non_overlapping(studies)
    if thresholds:
        sides = {_side(estimate, thresholds) for estimate, _, _ in studies}
        spans = _categories_spanned(pi, thresholds) if k >= 3 else 0
        if (len(sides) > 1 and disjoint) or spans >= 2:
            why = (
                "study estimates fall on both sides of a threshold and some CIs do not overlap"
                if len(sides) > 1 and disjoint
                else "the prediction interval spans two or more threshold categories"
            )
            return Suggestion("inconsistency", "serious", f"Rated down: {why}.", figures)
        return Suggestion(
            "inconsistency",
            "not_serious",
            "Study estimates agree relative to the panel's thresholds.",
            figures,
        )
    width = None if None in pi else pi[1] - pi[0]  # type: ignore[operator]
    if k >= 3 and width is not None and width > PI_WIDTH_SERIOUS:
        return Suggestion(
            "inconsistency",
            "serious",
            f"Prediction interval {width:.0%} wide (> {PI_WIDTH_SERIOUS:.0%}; no threshold set).",
            figures,
        )
    if i2 is not None and q_p is not None and i2 >= I2_SERIOUS and q_p < Q_P_SERIOUS and disjoint:
        return Suggestion(
            "inconsistency",
            "serious",
            f"I² {i2:.0f}% with Q p {q_p:.2f} and non-overlapping study CIs (no threshold set).",
            figures,
        )
    return Suggestion(
        "inconsistency",
        "not_serious",
        "No important differences between studies (no threshold set: judged on the prediction "
        "interval, overlapping CIs and I² with Q)."
        if k >= 3
        else "Two studies with overlapping or similar estimates (no prediction interval with 2).",
        figures,
    )


def _non_overlapping(studies: Sequence[tuple[float, float, float]]) -> bool:
    """Whether some pair of study CIs does not overlap."""
    return any(
        a_high < b_low or b_high < a_low
        for i, (_, a_low, a_high) in enumerate(studies)
        for _, b_low, b_high in studies[i + 1 :]
    )


def _side(value: float, thresholds: Sequence[float]) -> int:
    return sum(value > t for t in thresholds)


def _categories_spanned(pi: tuple[float | None, float | None], thresholds: Sequence[float]) -> int:
    low, high = pi
    if low is None or high is None:
        return 0
    return _side(high, thresholds) - _side(low, thresholds) + 1


# ---- indirectness ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mismatch:
    """How one cohort differs from the question: what differs, what is unknown, its patients."""

    cohort: str
    patients: int
    differs: tuple[str, ...]
    unclear: tuple[str, ...]


def suggest_indirectness(cohorts: Sequence[Mismatch]) -> Suggestion:
    """≥ 50% of patients from cohorts differing from the question on one element → serious; on
    two or more elements → very serious [default]; unknowns are listed, not counted."""
    total = sum(c.patients for c in cohorts)
    if not cohorts or total == 0:
        return Suggestion("indirectness", "not_assessable", "No cohort in this row.")
    one = sum(c.patients for c in cohorts if c.differs) / total
    two = sum(c.patients for c in cohorts if len(c.differs) >= 2) / total
    unclear = sorted({u for c in cohorts for u in c.unclear})
    differing = sorted({d for c in cohorts for d in c.differs})
    figures = (
        ("patients from cohorts differing on ≥ 1 element", f"{one:.0%}"),
        ("on ≥ 2 elements", f"{two:.0%}"),
        ("differs", ", ".join(differing) or "none"),
        ("not reported", ", ".join(unclear) or "none"),
    )
    if two >= SHARE_CONCERNING:
        level: Level = "very_serious"
        reason = f"{two:.0%} of patients come from cohorts that differ on two or more elements."
    elif one >= SHARE_CONCERNING:
        level = "serious"
        reason = f"{one:.0%} of patients come from cohorts that differ from the question."
    else:
        level = "not_serious"
        reason = "Most patients come from cohorts that match the question."
    if unclear:
        reason += f" Not reported in some cohorts: {', '.join(unclear)}."
    return Suggestion("indirectness", level, reason, figures)


# ---- imprecision -------------------------------------------------------------------------------
def suggest_imprecision_rate(
    estimate: float | None,
    ci: tuple[float | None, float | None],
    patients: int,
    events: int,
    thresholds: Sequence[float] = (),
) -> Suggestion:
    """A pooled proportion's CI against the panel's thresholds (one crossed: serious; two or
    more: very serious); when none is crossed, an information-size analogue; with no threshold,
    the CI's half-width [default]; no events at all: very serious."""
    low, high = ci
    figures = (
        ("estimate", "-" if estimate is None else f"{estimate:.0%}"),
        ("95% CI", _interval(ci)),
        ("patients, events", f"{patients}, {events}"),
        ("thresholds", ", ".join(f"{t:.0%}" for t in thresholds) or "not set (default rule)"),
    )
    if estimate is None or low is None or high is None:
        return Suggestion(
            "imprecision", "not_assessable", "No pooled estimate in this slice.", figures
        )
    if events == 0:
        return Suggestion(
            "imprecision",
            "very_serious",
            f"No event in {patients} patients: only an upper bound ({high:.0%}) is known.",
            figures,
        )
    if thresholds:
        crossed = [t for t in thresholds if low < t < high]
        if len(crossed) >= 2:
            return Suggestion(
                "imprecision",
                "very_serious",
                f"The 95% CI {_interval(ci)} crosses {len(crossed)} thresholds.",
                figures,
            )
        if crossed:
            return Suggestion(
                "imprecision",
                "serious",
                f"The 95% CI {_interval(ci)} crosses the threshold of {crossed[0]:.0%}.",
                figures,
            )
        needed, target = information_size(estimate), _half_width_target(estimate)
        if patients < needed:
            return Suggestion(
                "imprecision",
                "serious",
                f"The CI crosses no threshold, but {patients} patients are fewer than the "
                f"{needed} needed to estimate {estimate:.0%} to ±{target:.0%}.",
                (*figures, ("information size", str(needed))),
            )
        return Suggestion(
            "imprecision",
            "not_serious",
            f"The 95% CI {_interval(ci)} lies on one side of every threshold.",
            figures,
        )
    half = (high - low) / 2
    if half > HALF_WIDTH_VERY_SERIOUS:
        level: Level = "very_serious"
    elif half > HALF_WIDTH_SERIOUS:
        level = "serious"
    else:
        level = "not_serious"
    return Suggestion(
        "imprecision",
        level,
        f"No threshold set: the 95% CI {_interval(ci)} is ±{half:.0%} "
        f"(default rule: > ±{HALF_WIDTH_SERIOUS:.0%} serious, > ±{HALF_WIDTH_VERY_SERIOUS:.0%} "
        "very serious).",
        figures,
    )


def information_size(proportion: float) -> int:
    """Patients needed to estimate a proportion to ±h with 95% confidence, n = 1.96² p(1-p)/h²,
    h = 0.10 (or p/2 when p is below 0.2 or above 0.8) [default analogue of GRADE's optimal
    information size for a single proportion]."""
    h = _half_width_target(proportion)
    return math.ceil(1.96**2 * proportion * (1 - proportion) / h**2)


def _half_width_target(proportion: float) -> float:
    if proportion < 0.2:
        return max(proportion / 2, 0.01)
    if proportion > 0.8:
        return max((1 - proportion) / 2, 0.01)
    return 0.10


def suggest_imprecision_ratio(
    ratio: float | None,
    ci: tuple[float | None, float | None],
    patients: int,
    comparator_risk: float | None,
    thresholds: tuple[float, float] = APPRECIABLE_RATIO,
) -> Suggestion:
    """A risk ratio's CI against 1 and the appreciable-effect bounds (crossing one: serious;
    both: very serious), and the optimal information size for a 25% relative reduction."""
    low, high = ci
    figures = (
        ("risk ratio", "-" if ratio is None else f"{ratio:.2f}"),
        ("95% CI", "-" if low is None or high is None else f"{low:.2f} to {high:.2f}"),
        ("patients", str(patients)),
        ("appreciable effect", f"RR {thresholds[0]:g} or {thresholds[1]:g}"),
    )
    if ratio is None or low is None or high is None:
        return Suggestion(
            "imprecision", "not_assessable", "No pooled comparison in this slice.", figures
        )
    crossed = [t for t in thresholds if low < t < high]
    needed = optimal_information_size(comparator_risk) if comparator_risk else None
    if needed is not None:
        figures = (*figures, ("optimal information size", str(needed)))
    if len(crossed) == 2:
        return Suggestion(
            "imprecision",
            "very_serious",
            "The 95% CI includes both an appreciable benefit and an appreciable harm.",
            figures,
        )
    if crossed:
        return Suggestion(
            "imprecision",
            "serious",
            f"The 95% CI crosses the appreciable-effect bound RR {crossed[0]:g}.",
            figures,
        )
    if needed is not None and patients < needed:
        level: Level = "very_serious" if patients < needed / 2 else "serious"
        return Suggestion(
            "imprecision",
            level,
            f"{patients} patients against an optimal information size of {needed}.",
            figures,
        )
    return Suggestion(
        "imprecision", "not_serious", "The CI is narrow relative to the bounds.", figures
    )


def optimal_information_size(
    control_risk: float, relative_reduction: float = 0.25, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Total patients of a two-arm comparison detecting a relative risk reduction (Core GRADE 2:
    α 0.05, β 0.20, RRR 25%), normal approximation for two proportions."""
    from statistics import NormalDist

    z_a, z_b = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    p1, p2 = control_risk, control_risk * (1 - relative_reduction)
    pbar = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    per_arm = root**2 / (p1 - p2) ** 2
    return 2 * math.ceil(per_arm)


# ---- publication bias --------------------------------------------------------------------------
def suggest_publication_bias(
    studies: Sequence[tuple[str, str, int]], unpublished_trials: Sequence[str] = ()
) -> Suggestion:
    """From (study, publication type, patients) of the pooled studies and the registered trials
    in scope without a full report: strongly suspected when such a trial exists, or when every
    study is small and most patients come from conference abstracts [default]."""
    k = len(studies)
    total = sum(n for _, _, n in studies)
    abstract = sum(n for _, kind, n in studies if kind == "abstract") / total if total else 0.0
    small = all(n < SMALL_STUDY for _, _, n in studies)
    figures = (
        ("studies", str(k)),
        ("patients from conference abstracts", f"{abstract:.0%}"),
        (f"every study under {SMALL_STUDY} patients", "yes" if small else "no"),
        ("registered trials without a full report", ", ".join(unpublished_trials) or "none"),
        (
            "funnel plot tests",
            "possible" if k >= FUNNEL_MIN_STUDIES else f"not possible (k < {FUNNEL_MIN_STUDIES})",
        ),
    )
    if k == 0:
        return Suggestion("publication_bias", "not_assessable", "No study in this row.", figures)
    if unpublished_trials:
        return Suggestion(
            "publication_bias",
            "serious",
            f"Registered trials without a full report: {', '.join(unpublished_trials)}.",
            figures,
        )
    if small and abstract >= SHARE_CONCERNING:
        return Suggestion(
            "publication_bias",
            "serious",
            f"All studies are small and {abstract:.0%} of patients come from conference "
            "abstracts, where early positive results are over-represented.",
            figures,
        )
    return Suggestion(
        "publication_bias",
        "not_serious",
        "No sign of missing studies; with fewer than 10 studies no funnel test can confirm it.",
        figures,
    )


def _interval(interval: tuple[float | None, float | None]) -> str:
    low, high = interval
    return "-" if low is None or high is None else f"{low:.0%} to {high:.0%}"
