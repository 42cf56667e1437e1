"""The slice of evidence a user is looking at, and its three faces: URL, SQL and words.

One `Filters` value is read from the URL query string, yields the parameters of the
`cohort_slice` query, and describes itself in a sentence for chart captions. Each filter is
declared once in `SPECS` with its URL name, its allowed values and its words, so the caption and
the query cannot drift apart (datasette's filters.py follows the same idea). Unknown or
malformed URL values are dropped with a notice, never an exception, because links get edited by
hand and pasted into e-mails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from evidence.sheets import ID_PATTERN, OUTCOME_LABELS, OUTCOMES

INDICATIONS = {
    "treatment": "treatment of ICANS",
    "prophylaxis": "prophylaxis",
    "severe_icans": "severe (grade 3-4) ICANS",
    "steroid_refractory_icans": "steroid-refractory ICANS",
    "refractory_crs_or_icans": "refractory CRS or ICANS",
    "carhlh": "carHLH",
    "icans_any": "ICANS of any grade",
    "universal_prophylaxis": "prophylaxis for all patients",
    "high_risk_prophylaxis": "prophylaxis for high-risk patients",
}
# Which top-level indication each sub-indication belongs to (pages are per top-level indication).
PARENT_INDICATION = {
    "severe_icans": "treatment",
    "steroid_refractory_icans": "treatment",
    "refractory_crs_or_icans": "treatment",
    "carhlh": "treatment",
    "icans_any": "treatment",
    "universal_prophylaxis": "prophylaxis",
    "high_risk_prophylaxis": "prophylaxis",
    "treatment": "treatment",
    "prophylaxis": "prophylaxis",
}
PRODUCT_CHOICES = {
    "axi-cel": "axi-cel",
    "brexu-cel": "brexu-cel",
    "tisa-cel": "tisa-cel",
    "liso-cel": "liso-cel",
    "mixed": "several products",
    "not_reported": "product not reported",
}
DOSE_BANDS = {
    "le200": "anakinra ≤ 200 mg/day",
    "gt200": "anakinra > 200 mg/day",
    "mixed": "doses on both sides of 200 mg/day",
    "not_reported": "dose not reported",
}
ROUTES = {
    "SC": "subcutaneous",
    "IV": "intravenous",
    "SC_IV": "SC or IV",
    "not_reported": "route not reported",
}
GRADING = {
    "ASTCT": "ASTCT",
    "CTCAE": "CTCAE",
    "CARTOX": "CARTOX",
    "other": "other grading",
    "not_reported": "grading not reported",
}
DESIGNS = {
    "prospective": "prospective",
    "retrospective": "retrospective",
    "registry_only": "registry only",
}
PUBTYPES = {
    "full_paper": "full papers",
    "abstract": "conference abstracts",
    "letter": "letters",
    "registry": "registry records",
    "news_report": "news reports",
    "not_reported": "publication type not reported",
}
WINDOWS = {"all": "all evidence to date", "review": "as reviewed (to April 2022)"}
# Pooling methods offered; the values are the arguments of evidence.meta.pool_proportions.
METHODS: dict[str, dict[str, str]] = {
    "glmm": {"method": "GLMM", "transform": "logit", "ci": "z"},
    "reml_hksj": {"method": "REML", "transform": "logit", "ci": "hksj"},
    "dl": {"method": "DL", "transform": "logit", "ci": "z"},
    "freeman_tukey": {"method": "REML", "transform": "freeman-tukey", "ci": "hksj"},
}
METHOD_LABELS = {
    "glmm": "GLMM, binomial-normal (primary)",
    "reml_hksj": "Logit, REML + Hartung-Knapp (secondary)",
    "dl": "Logit, DerSimonian-Laird (to reproduce published analyses)",
    "freeman_tukey": "Freeman-Tukey, REML + Hartung-Knapp (sensitivity only)",
}


@dataclass(frozen=True)
class Spec:
    """How one filter appears in the URL and in words."""

    name: str
    kind: str  # multi | float | int | choice | ids
    choices: Mapping[str, str] = field(default_factory=dict)
    low: float = 0
    high: float = 10_000


SPECS: tuple[Spec, ...] = (
    Spec("indication", "multi", INDICATIONS),
    Spec("product", "multi", PRODUCT_CHOICES),
    Spec("dose_min", "float", high=10_000),
    Spec("dose_max", "float", high=10_000),
    Spec("dose_band", "multi", DOSE_BANDS),
    Spec("route", "multi", ROUTES),
    Spec("grading", "multi", GRADING),
    Spec("design", "multi", DESIGNS),
    Spec("pubtype", "multi", PUBTYPES),
    Spec("year_min", "int", low=1990, high=2100),
    Spec("year_max", "int", low=1990, high=2100),
    Spec("min_n", "int", low=0, high=100_000),
    Spec("window", "choice", WINDOWS),
    Spec("outcome", "choice", {o: OUTCOME_LABELS[o] for o in OUTCOMES}),
    Spec("method", "choice", METHOD_LABELS),
    Spec("exclude", "ids"),
)
SPECS_BY_NAME = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class Filters:
    """A slice of the evidence; empty tuples and None mean "no restriction"; a cache key."""

    indication: tuple[str, ...] = ()
    product: tuple[str, ...] = ()
    dose_min: float | None = None
    dose_max: float | None = None
    dose_band: tuple[str, ...] = ()
    route: tuple[str, ...] = ()
    grading: tuple[str, ...] = ()
    design: tuple[str, ...] = ()
    pubtype: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    min_n: int | None = None
    window: str = "all"
    outcome: str | None = None
    method: str = "glmm"
    exclude: tuple[str, ...] = ()

    # ---- URL -------------------------------------------------------------------------------
    @classmethod
    def from_query_params(
        cls, params: Mapping[str, str | Sequence[str]]
    ) -> tuple[Filters, list[str]]:
        """Read filters from URL params (repeated key = several values); list what was dropped."""
        values: dict[str, Any] = {}
        notices: list[str] = []
        for key, raw in params.items():
            spec = SPECS_BY_NAME.get(key)
            items = [raw] if isinstance(raw, str) else list(raw)
            if spec is None:
                notices.append(f"Ignored unknown link parameter '{key}'.")
                continue
            parsed, bad = _parse(spec, items)
            notices += [f"Ignored {key}={item!r}: {why}." for item, why in bad]
            if parsed is not None:
                values[key] = parsed
        filters = cls(**values)
        if (
            filters.dose_min is not None
            and filters.dose_max is not None
            and filters.dose_min > filters.dose_max
        ):
            notices.append("Ignored the dose range: its minimum is above its maximum.")
            filters = replace(filters, dose_min=None, dose_max=None)
        if (
            filters.year_min is not None
            and filters.year_max is not None
            and filters.year_min > filters.year_max
        ):
            notices.append("Ignored the year range: its start is after its end.")
            filters = replace(filters, year_min=None, year_max=None)
        return filters, notices

    def to_query_params(self) -> dict[str, list[str]]:
        """The URL form: only what differs from the defaults, lists for repeated keys."""
        default = Filters()
        out: dict[str, list[str]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            if isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = [format(value, "g") if isinstance(value, float) else str(value)]
        return out

    # ---- SQL -------------------------------------------------------------------------------
    def sql_params(self) -> dict[str, Any]:
        """Parameters of the `cohort_slice` query."""
        return {
            "indication": list(self.indication),
            "product": list(self.product),
            "dose_min": self.dose_min,
            "dose_max": self.dose_max,
            "dose_band": list(self.dose_band),
            "route": list(self.route),
            "grading": list(self.grading),
            "design": list(self.design),
            "pubtype": list(self.pubtype),
            "year_min": self.year_min,
            "year_max": self.year_max,
            "min_n": self.min_n,
            "review_window_only": self.window == "review",
            "exclude": list(self.exclude),
        }

    def pooling_arguments(self) -> dict[str, str]:
        """Keyword arguments for evidence.meta.pool_proportions."""
        return dict(METHODS[self.method])

    # ---- words -----------------------------------------------------------------------------
    def clauses(self) -> list[str]:
        """The slice in plain words, one clause per active filter."""
        words: list[str] = []

        def either(choices: Mapping[str, str], chosen: tuple[str, ...]) -> str:
            return " or ".join(choices[c] for c in chosen)

        if self.indication:
            words.append(f"{either(INDICATIONS, self.indication)} cohorts")
        if self.product:
            words.append(
                f"{either(PRODUCT_CHOICES, self.product)} (a cohort with several products "
                "matches each product it contains)"
            )
        if self.dose_min is not None or self.dose_max is not None:
            low = f"{self.dose_min:g}" if self.dose_min is not None else "any"
            high = f"{self.dose_max:g}" if self.dose_max is not None else "any"
            words.append(
                f"anakinra dose range overlapping {low}-{high} mg/day "
                "(cohorts without a mg/day dose left out)"
            )
        if self.dose_band:
            words.append(either(DOSE_BANDS, self.dose_band))
        if self.route:
            words.append(either(ROUTES, self.route))
        if self.grading:
            words.append(f"{either(GRADING, self.grading)} grading")
        if self.design:
            words.append(f"{either(DESIGNS, self.design)} studies")
        if self.pubtype:
            words.append(either(PUBTYPES, self.pubtype))
        if self.year_min is not None or self.year_max is not None:
            words.append(f"published {self.year_min or '…'}-{self.year_max or '…'}")
        if self.min_n:
            words.append(f"cohorts of at least {self.min_n} patients")
        if self.window == "review":
            words.append(WINDOWS["review"])
        if self.exclude:
            words.append(f"excluding {', '.join(self.exclude)} by hand")
        return words

    def describe(self, studies: int | None = None, patients: int | None = None) -> str:
        """A caption such as "Treatment of ICANS cohorts, ASTCT grading: 3 studies, 28 patients"."""
        clauses = self.clauses()
        text = ", ".join(clauses) if clauses else "All anakinra cohorts"
        text = text[0].upper() + text[1:]
        if studies is not None:
            counted = f"{studies} stud{'y' if studies == 1 else 'ies'}"
            if patients is not None:
                counted += f", {patients} patient{'' if patients == 1 else 's'}"
            text += f": {counted}"
        return text

    def within(self, indication: str) -> Filters | None:
        """This slice restricted to one top-level indication (a page's scope), or None if the
        user's indication filter leaves nothing of it."""
        if not self.indication:
            return replace(self, indication=(indication,))
        kept = tuple(i for i in self.indication if PARENT_INDICATION[i] == indication)
        return replace(self, indication=kept) if kept else None

    def toggle_exclusion(self, study_id: str) -> Filters:
        """The same slice with one study excluded, or included again if it was excluded."""
        if study_id in self.exclude:
            return replace(self, exclude=tuple(s for s in self.exclude if s != study_id))
        return replace(self, exclude=(*self.exclude, study_id))


def _parse(spec: Spec, items: list[str]) -> tuple[Any, list[tuple[str, str]]]:
    """Parse one parameter's values; return (value or None, [(bad item, reason)])."""
    bad: list[tuple[str, str]] = []
    if spec.kind in ("multi", "ids"):
        good: list[str] = []
        for item in items:
            if spec.kind == "multi" and item not in spec.choices:
                bad.append((item, f"not one of {', '.join(spec.choices)}"))
            elif spec.kind == "ids" and not re.match(ID_PATTERN, item):
                bad.append((item, "not a study id"))
            elif item not in good:
                good.append(item)
        return (tuple(good) if good else None), bad
    if len(items) > 1:
        bad += [(item, "given more than once; the first value is used") for item in items[1:]]
    item = items[0] if items else ""
    if spec.kind == "choice":
        if item in spec.choices:
            return item, bad
        return None, [*bad, (item, f"not one of {', '.join(spec.choices)}")]
    try:
        number = float(item) if spec.kind == "float" else int(item)
    except ValueError:
        return None, [*bad, (item, "not a number")]
    if not spec.low <= number <= spec.high or number != number:
        return None, [*bad, (item, f"outside {spec.low:g}-{spec.high:g}")]
    return number, bad
