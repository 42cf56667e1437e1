"""What a user is looking at: the `Slice` (which cohorts) and the `View` (how they are shown).

Each filter is declared once, in `FILTERS`, with its link key, its sidebar label and kind, the
vocabulary it offers, the parameters it gives the `cohort_slice` query and the words that
describe it in a caption (datasette's filters declare their SQL and their human text together in
the same way). The link reader, the SQL parameters, the caption and the sidebar are all made from
these declarations, so adding a filter touches its declaration and its clause in `queries.sql`
only.

The slice decides which rows are pooled, so caches of counts and queries key on it alone; the
view (pooling method, outcome of the single-outcome views, subgroup split, highlighted study)
changes only how they are shown, so changing it never re-runs the slice's query.

Unknown or malformed link values are dropped with a notice, never an exception: links are edited
by hand and pasted into e-mails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, NamedTuple

from evidence import grade, vocab
from evidence.extraction.contract import ID_PATTERN

Kind = Literal["choices", "range", "minimum", "option", "studies"]


class Range(NamedTuple):
    """A numeric range; an open end is None."""

    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Filter:
    """One way to narrow the slice, declared once.

    kind: `choices` (codes of `vocabulary`, several allowed), `range` (link keys KEY_min and
    KEY_max), `minimum` (one whole number), `option` (one code of `vocabulary`), `studies` (study
    ids). `sentence` describes an active filter: `{either}` is the chosen labels joined by "or",
    `{low}`/`{high}` a range's ends (`open_end` where one is open), `{value}` a single value,
    `{ids}` the chosen study ids. `columns` names the sheet columns ("sheet.column") its clause
    in `queries.sql` reads; `covers` maps a choice to the codes it selects there, for choices that
    stand for several (the design filter's groups).
    """

    key: str
    label: str
    kind: Kind
    sentence: str
    vocabulary: vocab.Vocabulary | None = None
    columns: tuple[str, ...] = ()
    covers: Mapping[str, tuple[str, ...]] | None = None
    bounds: tuple[float, float] = (0, 100_000)
    whole_numbers: bool = False
    step: float = 1
    open_end: str = "…"
    help: str | None = None

    @property
    def default(self) -> Any:
        if self.kind == "range":
            return Range()
        if self.kind == "minimum":
            return None
        if self.kind == "option":
            assert self.vocabulary is not None
            return self.vocabulary.codes[0]
        return ()

    @property
    def link_keys(self) -> tuple[str, ...]:
        return (f"{self.key}_min", f"{self.key}_max") if self.kind == "range" else (self.key,)

    def sql_parameters(self, value: Any) -> dict[str, Any]:
        """This filter's parameters of the `cohort_slice` query (named as its link keys)."""
        if self.kind == "range":
            return {f"{self.key}_min": value.low, f"{self.key}_max": value.high}
        if self.kind in ("choices", "studies"):
            covers = self.covers or {}
            return {self.key: [code for choice in value for code in covers.get(choice, (choice,))]}
        return {self.key: value}

    def words(self, value: Any) -> str | None:
        """The filter in words, or None when it restricts nothing."""
        if value == self.default:
            return None
        labels = self.vocabulary.labels if self.vocabulary is not None else {}
        if self.kind == "range":
            ends = [self.open_end if end is None else format(end, "g") for end in value]
            return self.sentence.format(low=ends[0], high=ends[1])
        if self.kind == "option":
            return self.sentence.format(value=labels.get(value, value))
        if self.kind == "minimum":
            return self.sentence.format(value=value)
        return self.sentence.format(
            either=" or ".join(labels.get(code, code) for code in value), ids=", ".join(value)
        )


FILTERS: tuple[Filter, ...] = (
    Filter(
        "window",
        "Evidence",
        "option",
        "{value}",
        vocab.EVIDENCE_WINDOWS,
        columns=("studies.in_review_window",),
        help="The review searched to 1 April 2022; later reports are tagged and can be added.",
    ),
    Filter(
        "indication",
        "Indication",
        "choices",
        "{either} cohorts",
        vocab.INDICATION_CHOICES,
        columns=("cohorts.indication", "cohorts.sub_indication"),
    ),
    Filter(
        "product",
        "CAR-T product",
        "choices",
        "{either} (a cohort with several products matches each product it contains)",
        vocab.PRODUCT_CHOICES,
        columns=("cohorts.products",),
    ),
    Filter(
        "product_mix",
        "Cohorts that also hold other products",
        "option",
        "{value}",
        vocab.PRODUCT_MIX,
        columns=("cohorts.products",),
        help="A cohort with several products (e.g. axi-cel + tisa-cel) rarely reports its results "
        "per product. 'Alone' keeps only cohorts whose every product was chosen above.",
    ),
    Filter(
        "dose_band",
        "Dose band (review's split)",
        "choices",
        "{either}",
        vocab.DOSE_BANDS,
        columns=("cohorts.dose_band",),
    ),
    Filter("route", "Route", "choices", "{either}", vocab.ROUTES, columns=("cohorts.route",)),
    Filter(
        "grading",
        "ICANS grading system",
        "choices",
        "{either} grading",
        vocab.GRADING_SYSTEMS,
        columns=("cohorts.grading_system",),
    ),
    Filter(
        "design",
        "Design",
        "choices",
        "{either} studies",
        vocab.DESIGN_GROUPS,
        columns=("studies.design",),
        covers=vocab.DESIGNS_IN_GROUP,
    ),
    Filter(
        "pubtype",
        "Publication type",
        "choices",
        "{either}",
        vocab.PUBLICATION_TYPES,
        columns=("studies.publication_type",),
    ),
    Filter(
        "dose",
        "Anakinra dose (mg/day)",
        "range",
        "anakinra dose range overlapping {low}-{high} mg/day "
        "(cohorts without a mg/day dose left out)",
        columns=("cohorts.dose_mg_day_min", "cohorts.dose_mg_day_max"),
        bounds=(0, 10_000),
        step=50.0,
        open_end="any",
        help="Keeps cohorts whose reported dose range overlaps this one. Moving it away from the "
        "full range leaves out cohorts with no mg/day dose (e.g. weight-based dosing).",
    ),
    Filter(
        "year",
        "Publication year",
        "range",
        "published {low}-{high}",
        columns=("studies.year",),
        bounds=(1990, 2100),
        whole_numbers=True,
    ),
    Filter(
        "min_n",
        "Minimum cohort size",
        "minimum",
        "cohorts of at least {value} patients",
        columns=("cohorts.n_patients",),
        whole_numbers=True,
    ),
    Filter(
        "exclude",
        "Exclude studies (sensitivity)",
        "studies",
        "excluding {ids} by hand",
        columns=("cohorts.study_id",),
    ),
)
FILTERS_BY_KEY = {f.key: f for f in FILTERS}


class Slice:
    """Which cohorts are pooled: one value per declared filter, the default meaning "no
    restriction". Immutable and hashable, so it keys caches; its repr names every value."""

    __slots__ = ("_repr", "_values")
    _values: tuple[tuple[str, Any], ...]
    _repr: str

    def __init__(self, **chosen: Any) -> None:
        unknown = chosen.keys() - FILTERS_BY_KEY.keys()
        if unknown:
            raise TypeError(f"no filter named {', '.join(sorted(unknown))}")
        values = tuple((f.key, _normalised(f, chosen.get(f.key, f.default))) for f in FILTERS)
        object.__setattr__(self, "_values", values)
        # Made once: caches identify a slice by its repr on every call.
        active = ", ".join(f"{k}={v!r}" for k, v in self.active())
        object.__setattr__(self, "_repr", f"Slice({active})")

    def __getattr__(self, key: str) -> Any:
        for name, value in object.__getattribute__(self, "_values"):
            if name == key:
                return value
        raise AttributeError(key)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("a Slice is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slice) and self._values == other._values

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return self._repr

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_slice, (dict(self._values),))

    def replace(self, **changes: Any) -> Slice:
        return Slice(**{**dict(self._values), **changes})

    def active(self) -> Iterator[tuple[str, Any]]:
        """(key, value) of every filter that restricts something, in declaration order."""
        for f, (_, value) in zip(FILTERS, self._values, strict=True):
            if value != f.default:
                yield f.key, value

    # ---- SQL and words ---------------------------------------------------------------------
    def sql_params(self) -> dict[str, Any]:
        """Parameters of the `cohort_slice` query."""
        params: dict[str, Any] = {}
        for f, (_, value) in zip(FILTERS, self._values, strict=True):
            params |= f.sql_parameters(value)
        return params

    def clauses(self) -> list[str]:
        """The slice in plain words, one clause per active filter."""
        words = (f.words(value) for f, (_, value) in zip(FILTERS, self._values, strict=True))
        return [w for w in words if w]

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

    # ---- derived slices --------------------------------------------------------------------
    def within(self, indication: str) -> Slice | None:
        """This slice restricted to one indication (a page's scope), or None if the user's
        indication filter leaves nothing of it."""
        if not self.indication:
            return self.replace(indication=(indication,))
        kept = tuple(i for i in self.indication if vocab.PARENT_INDICATION.get(i, i) == indication)
        return self.replace(indication=kept) if kept else None

    def population(self) -> str | None:
        """The one indication every chosen indication belongs to ("treatment" or "prophylaxis"),
        or None when the slice holds both."""
        parents = {vocab.PARENT_INDICATION.get(i, i) for i in self.indication}
        return parents.pop() if len(parents) == 1 else None

    def toggle_exclusion(self, study_id: str) -> Slice:
        """The same slice with one study excluded, or included again if it was excluded."""
        if study_id in self.exclude:
            return self.replace(exclude=tuple(s for s in self.exclude if s != study_id))
        return self.replace(exclude=(*self.exclude, study_id))


def _rebuild_slice(values: dict[str, Any]) -> Slice:
    return Slice(**values)


def _normalised(f: Filter, value: Any) -> Any:
    if f.kind in ("choices", "studies"):
        return tuple(value)
    if f.kind == "range":
        return Range(*value)
    return value


@dataclass(frozen=True)
class View:
    """How the slice is shown: the pooling method, the outcome of the single-outcome views
    (None: the page's default), the subgroup split, the highlighted study, the display mode
    (a desk's screen or a meeting's projector), and the panel's GRADE settings for the summary
    of findings (decisions, thresholds, the data they were made on)."""

    method: str = "glmm"
    outcome: str | None = None
    split: str = "product"
    study: str | None = None
    mode: str = "screen"
    panel: grade.PanelSettings = field(default_factory=grade.PanelSettings)

    def outcome_or(self, default: str) -> str:
        """The outcome chosen for single-outcome views, else the page's `default`."""
        return self.outcome if self.outcome is not None else default


# The panel's settings in a link: repeated `judge=ROW~DOMAIN~LEVEL~REASON` and
# `threshold=ROW~VALUE`, and `graded_on=DATA_VERSION`. Carried by the link itself, so a copied
# link restores them on any server with nothing stored there.
PANEL_KEYS = ("judge", "threshold", "graded_on")
SEPARATOR = "~"
VERSION = re.compile(r"^[0-9a-f]{8,64}$")

# The view's link keys and what each accepts (None: a study id).
VIEW_SETTINGS: Mapping[str, vocab.Vocabulary | None] = {
    "method": vocab.POOLING_METHODS,
    "outcome": vocab.OUTCOMES,
    "split": vocab.SUBGROUP_DIMENSIONS,
    "study": None,
    "mode": vocab.DISPLAY_MODES,
}


# ---- links ---------------------------------------------------------------------------------
def read_link(params: Mapping[str, str | Sequence[str]]) -> tuple[Slice, View, list[str]]:
    """The slice and view a link's query string names (a repeated key gives several values),
    and a notice for every value that was dropped."""
    by_link_key = {key: f for f in FILTERS for key in f.link_keys}
    chosen: dict[str, Any] = {}
    view: dict[str, Any] = {}
    notices: list[str] = []
    panel_items: dict[str, list[str]] = {}
    for key, raw in params.items():
        items = [raw] if isinstance(raw, str) else list(raw)
        if key in PANEL_KEYS:
            panel_items[key] = items
            continue
        if key in VIEW_SETTINGS:
            value, bad = _one_code(VIEW_SETTINGS[key], items)
            if value is not None:
                view[key] = value
        elif key in by_link_key:
            f = by_link_key[key]
            value, bad = _parse(f, items)
            if value is not None and f.kind == "range":
                end = 0 if key.endswith("_min") else 1
                current = list(chosen.get(f.key, Range()))
                current[end] = value
                value = Range(*current)
            if value is not None:
                chosen[f.key] = value
        else:
            notices.append(f"Ignored unknown link parameter {quoted(key)}.")
            continue
        notices += [f"Ignored {key}={quoted(item)}: {why}." for item, why in bad]
    for f in FILTERS:
        span = chosen.get(f.key)
        if f.kind == "range" and span and None not in span and span.low > span.high:
            notices.append(f"Ignored the {f.label.lower()} range: its start is above its end.")
            del chosen[f.key]
    panel, bad_panel = _read_panel(panel_items)
    return Slice(**chosen), View(**view, panel=panel), notices + bad_panel


def _read_panel(items: Mapping[str, list[str]]) -> tuple[grade.PanelSettings, list[str]]:
    """The panel's decisions, thresholds and data version from a link; a notice per value
    dropped. A later decision on the same row and domain replaces an earlier one."""
    decisions: dict[tuple[str, str], grade.Decision] = {}
    thresholds: list[tuple[str, float]] = []
    notices: list[str] = []
    for text in items.get("judge", []):
        parts = text.split(SEPARATOR, 3)
        if (
            len(parts) < 3
            or not grade.ROW_ID.match(parts[0])
            or parts[1] not in grade.DOMAINS
            or parts[2] not in grade.LEVELS
        ):
            notices.append(f"Ignored judge={quoted(text)}: not ROW~DOMAIN~LEVEL~REASON.")
            continue
        reason = " ".join((parts[3] if len(parts) > 3 else "").split())[: grade.REASON_LIMIT]
        decisions[(parts[0], parts[1])] = grade.Decision(parts[0], parts[1], parts[2], reason)
    for text in items.get("threshold", []):
        row, _, value = text.partition(SEPARATOR)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not grade.ROW_ID.match(row) or not 0 < number < 100:
            notices.append(f"Ignored threshold={quoted(text)}: not ROW~NUMBER.")
        elif (row, number) not in thresholds:
            thresholds.append((row, number))
    version = None
    for text in items.get("graded_on", [])[:1]:
        if VERSION.match(text):
            version = text
        else:
            notices.append(f"Ignored graded_on={quoted(text)}: not a data version.")
    panel = grade.PanelSettings(tuple(decisions.values()), tuple(thresholds), version)
    return panel, notices


def keep_known_studies(
    rows: Slice, view: View, study_ids: Collection[str]
) -> tuple[Slice, View, list[str]]:
    """The slice and view without study ids the data in use does not have (a link made on other
    data, or edited by hand), and a notice for each one dropped."""
    known = set(study_ids)
    notices = [
        f"Ignored exclude={quoted(s)}: no study with this id in the data in use."
        for s in rows.exclude
        if s not in known
    ]
    if notices:
        rows = rows.replace(exclude=tuple(s for s in rows.exclude if s in known))
    if view.study is not None and view.study not in known:
        notices.append(f"Ignored study={quoted(view.study)}: no study with this id in the data.")
        view = replace(view, study=None)
    return rows, view, notices


def link_params(rows: Slice, view: View) -> dict[str, list[str]]:
    """The query string of a link to this slice and view: only what differs from the defaults,
    lists for repeated keys."""
    out: dict[str, list[str]] = {}
    for key, value in rows.active():
        f = FILTERS_BY_KEY[key]
        if f.kind == "range":
            for link_key, end in zip(f.link_keys, value, strict=True):
                if end is not None:
                    out[link_key] = [format(end, "g")]
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = [str(value)]
    default = View()
    for setting in fields(View):
        value = getattr(view, setting.name)
        if setting.name != "panel" and value != getattr(default, setting.name):
            out[setting.name] = [str(value)]
    panel = view.panel
    if panel.decisions:
        out["judge"] = [
            SEPARATOR.join((d.row, d.domain, d.level, d.reason)) for d in panel.decisions
        ]
    if panel.thresholds:
        out["threshold"] = [f"{row}{SEPARATOR}{value:g}" for row, value in panel.thresholds]
    if panel.data_version:
        out["graded_on"] = [panel.data_version]
    return out


NOTICE_VALUE_LIMIT = 60  # characters of a link value a notice repeats


def quoted(value: str) -> str:
    """A link value as a notice repeats it: quoted, and shortened (links can carry anything)."""
    text = value if len(value) <= NOTICE_VALUE_LIMIT else value[: NOTICE_VALUE_LIMIT - 1] + "…"
    return repr(text)


def _parse(f: Filter, items: list[str]) -> tuple[Any, list[tuple[str, str]]]:
    """One filter's link values: (value or None, [(bad item, reason)])."""
    if f.kind in ("choices", "studies"):
        good: list[str] = []
        bad: list[tuple[str, str]] = []
        for item in items:
            if f.vocabulary is not None and item not in f.vocabulary:
                bad.append((item, f"not one of {', '.join(f.vocabulary)}"))
            elif f.vocabulary is None and not re.match(ID_PATTERN, item):
                bad.append((item, "not a study id"))
            elif item not in good:
                good.append(item)
        return (tuple(good) if good else None), bad
    if f.kind == "option":
        return _one_code(f.vocabulary, items)
    first, bad = _first(items)
    try:
        number = int(first) if f.whole_numbers else float(first)
    except ValueError:
        return None, [*bad, (first, "not a number")]
    low, high = f.bounds
    if math.isnan(number) or not low <= number <= high:
        return None, [*bad, (first, f"outside {low:g}-{high:g}")]
    return number, bad


def _one_code(
    vocabulary: vocab.Vocabulary | None, items: list[str]
) -> tuple[str | None, list[tuple[str, str]]]:
    """A single code of `vocabulary` (a study id when None)."""
    first, bad = _first(items)
    if vocabulary is None:
        if re.match(ID_PATTERN, first):
            return first, bad
        return None, [*bad, (first, "not a study id")]
    if first in vocabulary:
        return first, bad
    return None, [*bad, (first, f"not one of {', '.join(vocabulary)}")]


def _first(items: list[str]) -> tuple[str, list[tuple[str, str]]]:
    extra = [(item, "given more than once; the first value is used") for item in items[1:]]
    return (items[0] if items else ""), extra
