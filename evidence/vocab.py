"""Every fixed vocabulary of the evidence, declared once: its codes, their order, the words a
reader sees, and how codes group.

The sheet contract (which values a sheet may hold), the validator, the filters and their sidebar
labels, the template's dropdowns and the chart and table labels all read these declarations, so
a value offered in one place is accepted in every other (`tests/test_vocab.py` checks the data
dictionary, `data/README.md`, against them too). Codes are what the sheets store and links carry;
labels are what a person reads, so no raw code needs to reach the screen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    """A closed list of codes in display order, each with its label."""

    name: str
    terms: tuple[tuple[str, str], ...]  # (code, label)

    def __post_init__(self) -> None:
        codes = [code for code, _ in self.terms]
        if len(set(codes)) != len(codes):
            raise ValueError(f"vocabulary {self.name!r} lists a code twice")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.terms)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.terms)

    def label(self, code: str) -> str:
        """The words for `code` (KeyError for a code outside the vocabulary: drift is a bug)."""
        return self.labels[code]

    def __contains__(self, code: object) -> bool:
        return code in self.labels

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.terms)


def _vocabulary(name: str, *terms: tuple[str, str]) -> Vocabulary:
    return Vocabulary(name, terms)


# ---- studies -------------------------------------------------------------------------------
PUBLICATION_TYPES = _vocabulary(
    "publication_type",
    ("full_paper", "full paper"),
    ("abstract", "conference abstract"),
    ("letter", "letter"),
    ("registry", "registry record"),
    ("news_report", "news report"),
    ("not_reported", "publication type not reported"),
)
STUDY_DESIGNS = _vocabulary(
    "design",
    ("retrospective", "retrospective"),
    ("prospective_single_arm", "prospective, single arm"),
    ("prospective_phase1", "prospective, phase 1"),
    ("prospective_phase2", "prospective, phase 2"),
    ("registry_only", "registry record only"),
    ("not_reported", "design not reported"),
)
# The design filter offers broader groups; each names the designs it covers.
DESIGN_GROUPS = _vocabulary(
    "design_group",
    ("prospective", "prospective"),
    ("retrospective", "retrospective"),
    ("registry_only", "registry record only"),
    ("not_reported", "design not reported"),
)
DESIGNS_IN_GROUP: Mapping[str, tuple[str, ...]] = {
    "prospective": ("prospective_single_arm", "prospective_phase1", "prospective_phase2"),
    "retrospective": ("retrospective",),
    "registry_only": ("registry_only",),
    "not_reported": ("not_reported",),
}
REVIEW_INCLUSION = _vocabulary(
    "review_inclusion",
    ("likely", "likely"),
    ("possible", "possible"),
    ("unlikely", "unlikely"),
    ("excluded", "excluded"),
)
EXTRACTION_STATUS = _vocabulary(
    "extraction_status",
    ("numbers_extracted", "numbers extracted"),
    ("partial", "partly extracted"),
    ("identified_only", "identified, no numbers"),
)

# ---- sources -------------------------------------------------------------------------------
SOURCE_KINDS = _vocabulary(
    "kind",
    ("primary_paper", "primary paper"),
    ("primary_abstract", "primary abstract"),
    ("registry", "registry record"),
    ("secondary_review", "later review"),
    ("news_report", "news report"),
)

# ---- cohorts -------------------------------------------------------------------------------
INDICATIONS = _vocabulary(
    "indication",
    ("treatment", "treatment of ICANS"),
    ("prophylaxis", "prophylaxis"),
)
SUB_INDICATIONS = _vocabulary(
    "sub_indication",
    ("severe_icans", "severe (grade 3-4) ICANS"),
    ("steroid_refractory_icans", "steroid-refractory ICANS"),
    ("refractory_crs_or_icans", "refractory CRS or ICANS"),
    ("carhlh", "carHLH"),
    ("icans_any", "ICANS of any grade"),
    ("universal_prophylaxis", "prophylaxis for all patients"),
    ("high_risk_prophylaxis", "prophylaxis for high-risk patients"),
    ("not_reported", "sub-indication not reported"),
)
# The indication each named sub-indication belongs to (a page shows one indication). A cohort
# whose sub-indication is not reported is reached through its indication.
PARENT_INDICATION: Mapping[str, str] = {
    "severe_icans": "treatment",
    "steroid_refractory_icans": "treatment",
    "refractory_crs_or_icans": "treatment",
    "carhlh": "treatment",
    "icans_any": "treatment",
    "universal_prophylaxis": "prophylaxis",
    "high_risk_prophylaxis": "prophylaxis",
}
# The indication filter offers both levels (a page keeps the choices under its own indication).
INDICATION_CHOICES = _vocabulary(
    "indication",
    *INDICATIONS.terms,
    *((code, label) for code, label in SUB_INDICATIONS.terms if code in PARENT_INDICATION),
)
ARMS = _vocabulary("arm", ("anakinra", "anakinra"), ("comparator", "comparison cohort"))
DISEASES = _vocabulary(
    "disease",
    ("LBCL", "large B-cell lymphoma"),
    ("MCL", "mantle cell lymphoma"),
    ("LBCL_MCL", "large B-cell or mantle cell lymphoma"),
    ("B_cell_and_myeloma", "B-cell lymphoma and myeloma"),
    ("mixed_lymphoma", "several lymphomas"),
    ("not_reported", "disease not reported"),
)
PRODUCTS = _vocabulary(
    "products",
    ("axi-cel", "axi-cel"),
    ("brexu-cel", "brexu-cel"),
    ("tisa-cel", "tisa-cel"),
    ("liso-cel", "liso-cel"),
    ("other", "another product"),
)
# What the product filter offers beyond the products themselves.
PRODUCT_CHOICES = _vocabulary(
    "product",
    *PRODUCTS.terms,
    ("mixed", "several products"),
    ("not_reported", "product not reported"),
)
# Whether a product slice keeps cohorts that mix the chosen products with others (their patients'
# products are not split in the reports).
PRODUCT_MIX = _vocabulary(
    "product_mix",
    ("any", "including cohorts that also hold other products"),
    ("alone", "only cohorts of the chosen products alone"),
)
DOSE_BANDS = _vocabulary(
    "dose_band",
    ("le200", "anakinra ≤ 200 mg/day"),
    ("gt200", "anakinra > 200 mg/day"),
    ("mixed", "doses on both sides of 200 mg/day"),
    ("not_reported", "dose not reported"),
)
ROUTES = _vocabulary(
    "route",
    ("SC", "subcutaneous"),
    ("IV", "intravenous"),
    ("SC_IV", "SC or IV"),
    ("not_reported", "route not reported"),
)
GRADING_SYSTEMS = _vocabulary(
    "grading_system",
    ("ASTCT", "ASTCT"),
    ("CTCAE", "CTCAE"),
    ("CARTOX", "CARTOX"),
    ("other", "other grading"),
    ("not_reported", "grading not reported"),
)

# ---- outcomes ------------------------------------------------------------------------------
OUTCOMES = _vocabulary(
    "outcome",
    ("icans_response", "Neurological response / improvement"),
    ("icans_resolution", "ICANS resolution"),
    ("grade5_icans", "Grade 5 (fatal) ICANS"),
    ("any_icans", "Any-grade ICANS"),
    ("grade3plus_icans", "Grade ≥ 3 ICANS"),
    ("any_crs", "Any-grade CRS"),
    ("grade2plus_crs", "Grade ≥ 2 CRS"),
    ("grade3plus_crs", "Grade ≥ 3 CRS"),
    ("early_mortality", "Early mortality"),
    ("death", "Death (any cause)"),
    ("trm", "Treatment-related mortality"),
    ("infection", "Infection"),
    ("viral_encephalitis", "Viral encephalitis"),
    ("hospital_days", "Hospital stay (days)"),
    ("cumulative_steroid", "Cumulative steroid dose"),
    ("anakinra_discontinuation", "Anakinra stopped for side effects"),
    ("lymphoma_orr", "Lymphoma overall response"),
    ("lymphoma_cr", "Lymphoma complete response"),
    ("carhlh_response", "carHLH response"),
)
# Which outcomes each view pools, in the order it shows them.
# The Overview's key results: each outcome in the population it is about.
KEY_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("treatment", "icans_response"),
    ("treatment", "grade5_icans"),
    ("prophylaxis", "any_icans"),
    ("prophylaxis", "grade3plus_icans"),
)
OUTCOME_GROUPS: Mapping[str, tuple[str, ...]] = {
    "treatment": ("icans_response", "icans_resolution", "grade5_icans", "early_mortality"),
    "prophylaxis": ("any_icans", "grade3plus_icans", "any_crs", "grade3plus_crs"),
    "safety": (
        "infection",
        "viral_encephalitis",
        "death",
        "trm",
        "grade5_icans",
        "anakinra_discontinuation",
    ),
}
# What a patient "does" for each outcome, as (present, past): "about 70 in 100 may improve",
# "about 70 in 100 treated patients improved". Words for the plain-language lines.
OUTCOME_VERBS: Mapping[str, tuple[str, str]] = {
    "icans_response": ("improve", "improved"),
    "icans_resolution": ("have their ICANS resolve", "had their ICANS resolve"),
    "grade5_icans": ("die of ICANS", "died of ICANS"),
    "any_icans": ("develop ICANS", "developed ICANS"),
    "grade3plus_icans": ("develop grade ≥ 3 ICANS", "developed grade ≥ 3 ICANS"),
    "any_crs": ("develop CRS", "developed CRS"),
    "grade2plus_crs": ("develop grade ≥ 2 CRS", "developed grade ≥ 2 CRS"),
    "grade3plus_crs": ("develop grade ≥ 3 CRS", "developed grade ≥ 3 CRS"),
    "early_mortality": ("die early", "died early"),
    "death": ("die", "died"),
    "trm": ("die of the treatment", "died of the treatment"),
    "infection": ("have an infection", "had an infection"),
    "viral_encephalitis": ("have viral encephalitis", "had viral encephalitis"),
    "anakinra_discontinuation": (
        "stop anakinra for side effects",
        "stopped anakinra for side effects",
    ),
    "lymphoma_orr": ("have a lymphoma response", "had a lymphoma response"),
    "lymphoma_cr": ("have a complete lymphoma response", "had a complete lymphoma response"),
    "carhlh_response": ("have their carHLH respond", "had their carHLH respond"),
}
# Who the patients of a page are, by the indication it shows (None: both indications).
POPULATION_WORDS: Mapping[str | None, str] = {
    "treatment": "patients given anakinra for ICANS",
    "prophylaxis": "patients given anakinra as prophylaxis",
    None: "patients given anakinra (treatment and prophylaxis cohorts together)",
}
UNITS = _vocabulary(
    "unit",
    ("patients", "patients"),
    ("percent", "%"),
    ("days", "days"),
    ("mg", "mg"),
    ("mg_dexamethasone_equivalent", "mg dexamethasone equivalent"),
)
STATISTICS = _vocabulary(
    "statistic",
    ("count", "count"),
    ("percent", "percent"),
    ("median", "median"),
    ("mean", "mean"),
    ("cumulative_incidence", "cumulative incidence"),
)
NUMBER_STATUS = _vocabulary(
    "status",
    ("primary", "read in the study's own report"),
    ("secondary", "read in a later review"),
    ("derived", "derived from printed figures"),
)

# ---- quality -------------------------------------------------------------------------------
QUALITY_TOOLS = _vocabulary(
    "tool",
    ("JBI_case_series", "JBI checklist for case series"),
    ("JBI_cohort", "JBI checklist for cohort studies"),
    ("not_assessable", "not assessable"),
)
JUDGEMENTS = _vocabulary(
    "judgement",
    ("yes", "yes"),
    ("no", "no"),
    ("unclear", "unclear"),
    ("not_applicable", "not applicable"),
)

# ---- checks and versions ----------------------------------------------------------------------
CHECK_RESULTS = _vocabulary(
    "check",
    ("agrees", "agrees"),
    ("disagrees", "disagrees"),
    ("not_applicable", "nothing to check"),
)
AGREEMENT_QUANTITIES = _vocabulary(
    "quantity",
    ("estimate", "estimate"),
    ("se", "standard error"),
    ("ci_lb", "CI lower bound"),
    ("ci_ub", "CI upper bound"),
    ("pi_lb", "prediction interval lower bound"),
    ("pi_ub", "prediction interval upper bound"),
    ("tau2", "τ²"),
    ("I2", "I²"),
    ("i2", "I²"),
    ("QE", "Q"),
    ("qe_wald", "Q (Wald)"),
    ("qe_lrt", "Q (likelihood ratio)"),
)
BUILD_INFO_ITEMS = {
    "schema_version": "Schema version",
    "built_at": "Built (UTC)",
    "origin": "Built from",
    "origin_kind": "Kind of source",
    "sheets_sha256": "Data version (SHA-256 of the sheets)",
}

# ---- how the evidence is viewed ------------------------------------------------------------
EVIDENCE_WINDOWS = _vocabulary(
    "window",
    ("all", "all evidence to date"),
    ("review", "as reviewed (to April 2022)"),
)
POOLING_METHODS = _vocabulary(
    "method",
    ("glmm", "GLMM, binomial-normal (primary)"),
    ("reml_hksj", "Logit, REML + Hartung-Knapp (secondary)"),
    ("dl", "Logit, DerSimonian-Laird (to reproduce published analyses)"),
    ("freeman_tukey", "Freeman-Tukey, REML + Hartung-Knapp (sensitivity only)"),
)
# Each method's arguments to evidence.meta.pool_proportions.
POOLING_ARGUMENTS: Mapping[str, Mapping[str, str]] = {
    "glmm": {"method": "GLMM", "transform": "logit", "ci": "z"},
    "reml_hksj": {"method": "REML", "transform": "logit", "ci": "hksj"},
    "dl": {"method": "DL", "transform": "logit", "ci": "z"},
    "freeman_tukey": {"method": "REML", "transform": "freeman-tukey", "ci": "hksj"},
}
SUBGROUP_DIMENSIONS = _vocabulary(
    "split",
    ("product", "CAR-T product"),
    ("dose_band", "Anakinra dose band"),
    ("grading_system", "ICANS grading system"),
    ("sub_indication", "Indication"),
)
# How the pages are drawn: for a desk ("screen") or for a room ("meeting": a projector, large
# type, no sidebar, one outcome per screen, PageDown/PageUp between outcomes). The chart styles
# of evidence.charts.STYLES have the same names.
DISPLAY_MODES = _vocabulary(
    "mode",
    ("screen", "screen"),
    ("meeting", "meeting (projector)"),
)
# The vocabulary that labels the groups of each split (the product split has its own rule:
# a cohort with several products is a group of its own).
SUBGROUP_VOCABULARIES: Mapping[str, Vocabulary] = {
    "dose_band": DOSE_BANDS,
    "grading_system": GRADING_SYSTEMS,
    "sub_indication": SUB_INDICATIONS,
}
