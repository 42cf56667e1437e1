"""The extraction sheets' contract: columns, types, vocabularies and references.

`data/README.md` is the human-readable form of this module; both describe the same sheets, and
`tests/test_build.py` checks that every column named here is documented there, with its range
when it is a number. Keeping the
contract as data (rather than as code scattered through the validator) lets the build, the
upload path and the template generator share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evidence import vocab

ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*$"

#: How a generated row (evidence.synthetic) begins its free text: the study notes, and the text of
#: every other row. The app counts studies whose notes start with it and says so in its banner.
SYNTHETIC_MARK = "SYNTHETIC"

# The ranges a number may take, declared once here (on each Column) and documented in
# data/README.md. They are wide enough for any report and narrow enough that a typo (an extra
# zero, a pasted PMID) or a hostile value (1e308, 2^31) is refused by the validator with its cell,
# before the database sees it. Every count fits DuckDB's INTEGER (2^31 - 1) many times over.
COUNT = (0, 100_000)  # patients, events, totals: the largest CAR-T cohorts hold hundreds
YEAR = (1990, 2100)  # CAR-T reports start in the 2010s; the schema checks the same range
PMID = (1, 99_999_999)  # PubMed ids have 1-8 digits (about 40 million in 2025)
DOSE_MG_DAY = (0, 10_000)  # anakinra mg/day: 100 mg to 1,600 mg/day or so is reported
DOSE_MG_KG_DAY = (0, 100)  # anakinra mg/kg/day: up to about 10-12 is reported
PRINTED_VALUE = (0, 1_000_000)  # a printed percent, days, mg (cumulative steroid mg included)
PERCENT = (0, 100)


@dataclass(frozen=True)
class Column:
    """One column of a sheet; `kind` is one of the dictionary's types.

    `bounds` (int and number columns): the smallest and largest value allowed, inclusive.
    `may_omit`: a column added after panels had filled in the template: a sheet may leave it out
    of its header (every row's value is then empty), so an extraction made with the earlier
    template still loads. Every other column must be in the header.
    """

    name: str
    kind: str  # id | text | int | number | bool | vocab | list | ref
    required: bool = False
    vocab: tuple[str, ...] = ()
    ref: str | None = None  # sheet whose id this column must name
    bounds: tuple[int, int] | None = None
    may_omit: bool = False

    @property
    def range_text(self) -> str:
        """The bounds as the data dictionary writes them ("0–100,000"), or "" for none."""
        if self.bounds is None:
            return ""
        return "–".join(f"{b:,}" if b >= 10_000 else str(b) for b in self.bounds)


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


def _vocab(vocabulary: vocab.Vocabulary, required: bool = True) -> Column:
    """A column holding one code of `vocabulary` (the column is named after it)."""
    return Column(vocabulary.name, "vocab", required, vocab=vocabulary.codes)


def _int(name: str, bounds: tuple[int, int] = COUNT) -> Column:
    return Column(name, "int", bounds=bounds)


def _number(name: str, bounds: tuple[int, int]) -> Column:
    return Column(name, "number", bounds=bounds)


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
        _int("year", YEAR),
        _text("title", True),
        _text("venue"),
        _vocab(vocab.PUBLICATION_TYPES),
        _int("pmid", PMID),
        _text("doi"),
        _text("nct_id"),
        _text("url"),
        _text("centres"),
        _text("country"),
        _vocab(vocab.STUDY_DESIGNS),
        _text("enrolment_period"),
        Column("in_review_window", "bool"),
        _vocab(vocab.REVIEW_INCLUSION),
        _text("review_inclusion_reason", True),
        Column("same_patients_as", "ref", ref="studies"),
        _vocab(vocab.EXTRACTION_STATUS),
        _text("notes"),
    ),
)

SOURCES = Sheet(
    "sources",
    "source_id",
    (
        Column("source_id", "id", True),
        _text("citation", True),
        _vocab(vocab.SOURCE_KINDS),
        _text("url"),
        _int("pmid", PMID),
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
        _vocab(vocab.INDICATIONS),
        _vocab(vocab.SUB_INDICATIONS),
        _vocab(vocab.ARMS),
        Column("comparator_for", "ref", ref="cohorts"),
        _vocab(vocab.DISEASES),
        _int("n_patients"),
        _int("n_axicel"),
        _int("n_brexucel"),
        _int("n_tisacel"),
        _int("n_lisocel"),
        _int("n_other_product"),
        Column("products", "list", vocab=vocab.PRODUCTS.codes),
        _number("dose_mg_day_min", DOSE_MG_DAY),
        _number("dose_mg_day_max", DOSE_MG_DAY),
        _number("dose_mg_kg_day_min", DOSE_MG_KG_DAY),
        _number("dose_mg_kg_day_max", DOSE_MG_KG_DAY),
        _vocab(vocab.DOSE_BANDS),
        _vocab(vocab.ROUTES),
        _text("schedule"),
        _vocab(vocab.GRADING_SYSTEMS),
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
        _vocab(vocab.OUTCOMES),
        _int("events"),
        _int("total"),
        _number("value", PRINTED_VALUE),
        _number("value_low", PRINTED_VALUE),
        _number("value_high", PRINTED_VALUE),
        _vocab(vocab.UNITS),
        _vocab(vocab.STATISTICS),
        _text("definition"),
        _text("timepoint"),
        Column("source_id", "ref", True, ref="sources"),
        _text("locator", True),
        _text("quote", True),
        _vocab(vocab.NUMBER_STATUS),
        _text("derivation"),
        Column("use_in_analysis", "bool", True),
        _text("conflict_note"),
        # What a reader must know before trusting the number (attribution, rounding, an
        # unlocated copy, a news report): shown with the number's provenance. Added after the
        # first template, so an outcomes sheet without it still loads.
        Column("caveat", "text", may_omit=True),
    ),
)

REVIEW_FIGURES = Sheet(
    "review_figures",
    "figure_id",
    (
        Column("figure_id", "id", True),
        _text("description", True),
        _text("quote", True),
        _int("numerator"),
        _int("denominator"),
        _number("reported_percent", PERCENT),
        Column("sum_of", "list"),
        _text("note"),
    ),
)

QUALITY = Sheet(
    "quality",
    None,
    (
        Column("study_id", "ref", True, ref="studies"),
        _vocab(vocab.QUALITY_TOOLS),
        _text("item", True),
        _vocab(vocab.JUDGEMENTS),
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

# Sheets of the template's own layout that a workbook may carry besides the tables: the reader
# skips them and the template writes them, so both take the names from here.
NOTES_SHEET = "notes"
LISTS_SHEET = "vocabularies"
HELPER_SHEETS = (NOTES_SHEET, LISTS_SHEET)
