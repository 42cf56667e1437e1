"""The extraction sheets' contract: columns, types, vocabularies and references.

`data/README.md` is the human-readable form of this module; both describe the same sheets, and
`tests/test_build.py` checks that every column named here is documented there. Keeping the
contract as data (rather than as code scattered through the validator) lets the build, the
upload path and the template generator share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRODUCTS = ("axi-cel", "brexu-cel", "tisa-cel", "liso-cel", "other")
GRADING_SYSTEMS = ("ASTCT", "CTCAE", "CARTOX", "other", "not_reported")
OUTCOMES = (
    "icans_response",
    "icans_resolution",
    "grade5_icans",
    "any_icans",
    "grade3plus_icans",
    "any_crs",
    "grade2plus_crs",
    "grade3plus_crs",
    "early_mortality",
    "death",
    "trm",
    "infection",
    "viral_encephalitis",
    "hospital_days",
    "cumulative_steroid",
    "anakinra_discontinuation",
    "lymphoma_orr",
    "lymphoma_cr",
    "carhlh_response",
)
OUTCOME_LABELS = {
    "icans_response": "Neurological response / improvement",
    "icans_resolution": "ICANS resolution",
    "grade5_icans": "Grade 5 (fatal) ICANS",
    "any_icans": "Any-grade ICANS",
    "grade3plus_icans": "Grade ≥ 3 ICANS",
    "any_crs": "Any-grade CRS",
    "grade2plus_crs": "Grade ≥ 2 CRS",
    "grade3plus_crs": "Grade ≥ 3 CRS",
    "early_mortality": "Early mortality",
    "death": "Death (any cause)",
    "trm": "Treatment-related mortality",
    "infection": "Infection",
    "viral_encephalitis": "Viral encephalitis",
    "hospital_days": "Hospital stay (days)",
    "cumulative_steroid": "Cumulative steroid dose",
    "anakinra_discontinuation": "Anakinra stopped for side effects",
    "lymphoma_orr": "Lymphoma overall response",
    "lymphoma_cr": "Lymphoma complete response",
    "carhlh_response": "carHLH response",
}

ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*$"


@dataclass(frozen=True)
class Column:
    """One column of a sheet; `kind` is one of the dictionary's types."""

    name: str
    kind: str  # id | text | int | number | bool | vocab | list | ref
    required: bool = False
    vocab: tuple[str, ...] = ()
    ref: str | None = None  # sheet whose id this column must name


@dataclass(frozen=True)
class Sheet:
    name: str
    key: str | None
    columns: tuple[Column, ...]
    rules: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _text(name: str, required: bool = False) -> Column:
    return Column(name, "text", required)


def _vocab(name: str, values: tuple[str, ...], required: bool = True) -> Column:
    return Column(name, "vocab", required, vocab=values)


def _fact_columns(prefix: str) -> tuple[Column, ...]:
    return (
        Column(f"{prefix}_source_id", "ref", ref="sources"),
        _text(f"{prefix}_locator"),
        _text(f"{prefix}_quote"),
    )


STUDIES = Sheet(
    "studies",
    "study_id",
    (
        Column("study_id", "id", True),
        _text("first_author"),
        Column("year", "int"),
        _text("title", True),
        _text("venue"),
        _vocab("publication_type", ("full_paper", "abstract", "letter", "registry", "news_report")),
        Column("pmid", "int"),
        _text("doi"),
        _text("nct_id"),
        _text("url"),
        _text("centres"),
        _text("country"),
        _vocab(
            "design",
            (
                "retrospective",
                "prospective_single_arm",
                "prospective_phase1",
                "prospective_phase2",
                "registry_only",
                "not_reported",
            ),
        ),
        _text("enrolment_period"),
        Column("in_review_window", "bool"),
        _vocab("review_inclusion", ("likely", "possible", "unlikely", "excluded")),
        _text("review_inclusion_reason", True),
        Column("same_patients_as", "ref", ref="studies"),
        _vocab("extraction_status", ("numbers_extracted", "partial", "identified_only")),
        _text("notes"),
    ),
)

SOURCES = Sheet(
    "sources",
    "source_id",
    (
        Column("source_id", "id", True),
        _text("citation", True),
        _vocab(
            "kind",
            ("primary_paper", "primary_abstract", "registry", "secondary_review", "news_report"),
        ),
        _text("url"),
        Column("pmid", "int"),
        _text("doi"),
        _text("notes"),
    ),
)

COHORTS = Sheet(
    "cohorts",
    "cohort_id",
    (
        Column("cohort_id", "id", True),
        Column("study_id", "ref", True, ref="studies"),
        _text("label", True),
        _vocab("indication", ("treatment", "prophylaxis")),
        _vocab(
            "sub_indication",
            (
                "severe_icans",
                "steroid_refractory_icans",
                "refractory_crs_or_icans",
                "carhlh",
                "icans_any",
                "universal_prophylaxis",
                "high_risk_prophylaxis",
                "not_reported",
            ),
        ),
        _vocab("arm", ("anakinra", "comparator")),
        Column("comparator_for", "ref", ref="cohorts"),
        _vocab(
            "disease",
            ("LBCL", "MCL", "LBCL_MCL", "B_cell_and_myeloma", "mixed_lymphoma", "not_reported"),
        ),
        Column("n_patients", "int"),
        Column("n_axicel", "int"),
        Column("n_brexucel", "int"),
        Column("n_tisacel", "int"),
        Column("n_lisocel", "int"),
        Column("n_other_product", "int"),
        Column("products", "list", vocab=PRODUCTS),
        Column("dose_mg_day_min", "number"),
        Column("dose_mg_day_max", "number"),
        Column("dose_mg_kg_day_min", "number"),
        Column("dose_mg_kg_day_max", "number"),
        _vocab("dose_band", ("le200", "gt200", "mixed", "not_reported")),
        _vocab("route", ("SC", "IV", "SC_IV", "not_reported")),
        _text("schedule"),
        _vocab("grading_system", GRADING_SYSTEMS),
        *_fact_columns("n"),
        *_fact_columns("product"),
        *_fact_columns("dose"),
        *_fact_columns("grading"),
        _text("notes"),
    ),
)

OUTCOME_SHEET = Sheet(
    "outcomes",
    "outcome_id",
    (
        Column("outcome_id", "id", True),
        Column("cohort_id", "ref", True, ref="cohorts"),
        _vocab("outcome", OUTCOMES),
        Column("events", "int"),
        Column("total", "int"),
        Column("value", "number"),
        Column("value_low", "number"),
        Column("value_high", "number"),
        _vocab("unit", ("patients", "percent", "days", "mg", "mg_dexamethasone_equivalent")),
        _vocab("statistic", ("count", "percent", "median", "mean", "cumulative_incidence")),
        _text("definition"),
        _text("timepoint"),
        Column("source_id", "ref", True, ref="sources"),
        _text("locator", True),
        _text("quote", True),
        _vocab("status", ("primary", "secondary", "derived")),
        _text("derivation"),
        Column("use_in_analysis", "bool", True),
        _text("conflict_note"),
    ),
)

REVIEW_FIGURES = Sheet(
    "review_figures",
    "figure_id",
    (
        Column("figure_id", "id", True),
        _text("description", True),
        _text("quote", True),
        Column("numerator", "int"),
        Column("denominator", "int"),
        Column("reported_percent", "number"),
        Column("sum_of", "list"),
        _text("note"),
    ),
)

QUALITY = Sheet(
    "quality",
    None,
    (
        Column("study_id", "ref", True, ref="studies"),
        _vocab("tool", ("JBI_case_series", "JBI_cohort", "not_assessable")),
        _text("item", True),
        _vocab("judgement", ("yes", "no", "unclear", "not_applicable")),
        _text("reason", True),
    ),
)

# Order matters: a sheet may only refer to sheets listed before it (or to itself).
SHEETS: tuple[Sheet, ...] = (STUDIES, SOURCES, COHORTS, OUTCOME_SHEET, REVIEW_FIGURES, QUALITY)
SHEETS_BY_NAME = {s.name: s for s in SHEETS}
FACT_PREFIXES = ("n", "product", "dose", "grading")
# The cohort column each fact's quote must support.
FACT_VALUE_COLUMNS = {
    "n": ("n_patients",),
    "product": ("n_axicel", "n_brexucel", "n_tisacel", "n_lisocel", "n_other_product", "products"),
    "dose": ("dose_mg_day_min", "dose_mg_day_max", "dose_mg_kg_day_min", "dose_mg_kg_day_max"),
    "grading": ("grading_system",),
}
