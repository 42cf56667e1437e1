"""Pieces every page shows the same way: the pooled-estimate block, a forest plot with its
caption and linked selection, statistical sentences, provenance, and the banner saying which data
is in use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial

import pandas as pd
import streamlit as st

from evidence import analysis, figures, vocab
from evidence.analysis import OutcomeAnalysis
from evidence.extraction import export
from evidence.extraction.validate import Problem
from evidence.filters import View
from evidence.format import (
    NOT_REPORTED,
    count,
    header,
    number,
    pct,
    pct_interval,
    plain,
    readable,
)
from evidence.format import (  # the pages' name for it; the report prints the same line
    subgroup_test_line as subgroup_test_line,
)
from evidence.meta.results import (
    ComparisonResult,
    MetaRegressionResult,
    PoolResult,
)
from evidence.ui import accessible, data, state
from evidence.ui.data import SliceEvidence

HIGHLIGHT_SHADE = "#FBE3D3"  # a pale tint of the charts' highlight colour (Okabe-Ito vermillion)


def data_banner() -> None:
    """Which data every number comes from, whenever it is not the shipped extraction."""
    active = data.active()
    if active.is_upload:
        left, right = st.columns([4, 1])
        if active.dataset is not None:
            left.warning(
                f"You are looking at {plain(active.label)}: anyone with this page's link sees "
                "the same data, after a reload and in another browser too (download the "
                "extraction on Methods & data to keep a copy)."
            )
        else:
            not_shared = f" {plain(active.notice)}" if active.notice else ""
            left.warning(
                f"You are looking at {plain(active.label)}, in this browser session only: a "
                "reload, a new tab or a copied link opens the shipped data instead (download "
                f"the extraction on Methods & data to keep it).{not_shared}"
            )
        right.button("Back to shipped data", key="back_to_shipped", on_click=_back_to_shipped)
    elif not active.is_shipped:
        st.info(f"This dashboard serves {plain(active.label)}, not the shipped extraction.")


def _back_to_shipped() -> None:
    """The whole app reruns: the sidebar's study list and slider bounds come from the data."""
    data.use_shipped()
    st.rerun()


MAX_NOTICES = 5  # a link can carry any number of bad values; the box says how many more


def notices(messages: list[str]) -> None:
    """What the link had that was ignored, in one box, each value shown as text."""
    if not messages:
        return
    counted = Counter(messages)  # in first-seen order; a value repeated is said once
    lines = [
        plain(message) + (f" (×{times})" if times > 1 else "")
        for message, times in list(counted.items())[:MAX_NOTICES]
    ]
    if len(counted) > MAX_NOTICES:
        lines.append(f"…and {len(counted) - MAX_NOTICES} more values ignored.")
    st.info("  \n".join(lines), icon=":material/info:")


def caption(*lines: str) -> None:
    """Lines of text under a chart or table, each shown as the text it is (a slice's words can
    carry study ids, notes can carry labels from an upload)."""
    st.caption("  \n".join(plain(line) for line in lines if line))


def highlighted() -> str | None:
    """The study highlighted on every page (picked in a chart or the Studies table)."""
    return state.current_view().study


def picked_row(frame: pd.DataFrame, table_key: str) -> str | None:
    """The study of the row selected in a selectable table, read before the table is drawn so
    that this run already shades it (the widget's state holds the selection of the last click)."""
    selection = st.session_state.get(table_key, {}).get("selection", {})
    rows = selection.get("rows", []) if isinstance(selection, dict) else []
    if not rows or rows[0] >= len(frame):
        return None
    return str(frame.iloc[rows[0]]["study_id"])


def headline(result: PoolResult) -> tuple[str, str]:
    """The number to read aloud and its interval. With one study that is the study's own
    proportion and exact CI (the model-scale estimate would carry the 0.5 correction)."""
    if result.k == 1:
        only = result.studies[0]
        return pct(only.proportion), f"exact 95% CI {pct_interval(only.ci.low, only.ci.high)}"
    pooled = result.proportion
    return pct(pooled.estimate), f"95% CI {pct_interval(pooled.ci.low, pooled.ci.high)}"


def pooled_sentence(result: PoolResult) -> str:
    """The pooled estimate in one line, with everything GRADE's inconsistency judgement needs."""
    pooled = result.proportion
    parts = [
        f"**{pct(pooled.estimate)}** (95% CI {pct_interval(pooled.ci.low, pooled.ci.high)})",
        f"prediction interval {pct_interval(pooled.pi.low, pooled.pi.high)}"
        if result.k >= 3
        else "no prediction interval (fewer than 3 studies)",
        f"k = {result.k}, {result.events_total}/{result.n_total} patients",
        f"τ² = {number(result.tau2, 3)}, I² = {number(result.i2, 1)}%",
    ]
    return " · ".join(parts)


def method_line(pooled: OutcomeAnalysis) -> str:
    """The method asked for, and the one shown instead when it could not be fitted."""
    text = f"Method: {vocab.POOLING_METHODS.label(pooled.method)}"
    result = pooled.result
    if result is not None and result.fallback_reason:
        text += f" — shown instead: {result.method} ({result.fallback_reason})"
    if pooled.method == "freeman_tukey":
        text += (
            ". Sensitivity analysis only: the Freeman-Tukey back-transform can mislead "
            "(Schwarzer 2019)."
        )
    return text


def result_sentence(result: PoolResult) -> str:
    """The pooled estimate in one line, or with one study that study's own proportion."""
    if result.k != 1:
        return pooled_sentence(result)
    only = result.studies[0]
    return (
        f"One study only — **{plain(only.label)}**: {only.events}/{only.total} = "
        f"**{pct(only.proportion)}** (exact 95% CI {pct_interval(only.ci.low, only.ci.high)}). "
        "Nothing is pooled."
    )


def plain_result(pooled: OutcomeAnalysis, population: str | None) -> str:
    """The result in one line a clinician reads without training: "About 71 in 100 patients given
    anakinra for ICANS improved; the true share is probably between 59 and 81"."""
    result = pooled.result
    if result is None:
        return pooled.message or "Nothing to pool in this slice."
    who = vocab.POPULATION_WORDS[population]
    did = vocab.OUTCOME_VERBS.get(pooled.outcome, ("", f"had {pooled.label.lower()}"))[1]
    if result.k == 1:
        only = result.studies[0]
        return (
            f"In the only study, {only.events} of {only.total} {who} {did} "
            f"({_in_100(only.proportion)} in 100); with one small study the true share could be "
            f"anywhere between {_in_100(only.ci.low)} and {_in_100(only.ci.high)} in 100."
        )
    p = result.proportion
    line = (
        f"About {_in_100(p.estimate)} in 100 {who} {did}; the true share is probably between "
        f"{_in_100(p.ci.low)} and {_in_100(p.ci.high)}."
    )
    low, high = _in_100(p.pi.low), _in_100(p.pi.high)
    if (
        result.k >= 3
        and p.pi.low is not None
        and (low, high) != (_in_100(p.ci.low), _in_100(p.ci.high))
    ):
        line += f" In a new group of such patients it could lie between {low} and {high}."
    return line


def _in_100(value: float | None) -> str:
    return "?" if value is None else str(round(100 * value))


def coverage_line(evidence: SliceEvidence, pooled: OutcomeAnalysis) -> str:
    """How much of the slice a result rests on: studies reporting it of the studies in the
    slice, patients pooled of the patients in the slice."""
    counts = evidence.summary
    studies = pooled.rows["study_id"].nunique() if not pooled.rows.empty else 0
    patients = int(pooled.rows["total"].sum()) if not pooled.rows.empty else 0
    return (
        f"{studies} of {counts.studies} studies in this slice report it · {patients} of "
        f"{counts.patients} patients in the slice pooled"
    )


GLOSSARY = {
    "k": "the number of cohorts (study groups) whose counts are pooled.",
    "95% CI": "the confidence interval: where the average share of patients with the outcome "
    "probably lies, given these studies.",
    "Prediction interval": "where the share in a new, comparable group of patients would "
    "probably fall; wider than the CI when studies disagree. Needs 3 or more studies.",
    "τ²": "how much the true shares differ between studies (0: no detectable difference).",
    "I²": "the part of the variation between studies not due to chance, in percent; very "
    "uncertain with few studies.",
    "GLMM": "the primary method: a model of each study's counts as they are (binomial), with "
    "studies allowed to differ; needs no correction for studies with 0 events.",
}


def glossary() -> None:
    """Short explanations of the statistics, at hand beside the results."""
    with st.popover("What do k, CI, prediction interval, τ², I² and GLMM mean?"):
        for term, meaning in GLOSSARY.items():
            st.markdown(f"**{term}**: {meaning}")


def pooled_block(evidence: SliceEvidence, pooled: OutcomeAnalysis) -> None:
    """The result in plain words, then the figures, what they rest on and the method; or a plain
    message in its place when there is nothing to pool."""
    st.caption(coverage_line(evidence, pooled))
    if pooled.result is None:
        st.info(plain(pooled.message or "Nothing to pool in this slice."))
        return
    result = pooled.result
    st.markdown(plain(plain_result(pooled, evidence.rows.population())))
    st.markdown(result_sentence(result))
    if pooled.message and result.k != 1:
        st.warning(plain(pooled.message))
    caption(*result.notes, method_line(pooled))


def regression_line(evidence: SliceEvidence, code: str) -> str:
    """The dose meta-regression in words, or why this slice cannot carry one."""
    regression = evidence.dose_regression(code)
    if regression is None:
        points = evidence.dose_points(code)
        return (
            f"Meta-regression needs at least {analysis.MIN_STUDIES_FOR_REGRESSION} cohorts with "
            f"different mg/day doses; this slice has {count(len(points), 'cohort')} with "
            f"{count(points['dose_mid'].nunique(), 'distinct dose')}."
        )
    return slope_sentence(regression)


def slope_sentence(regression: MetaRegressionResult) -> str:
    """The dose slope per 100 mg/day on the logit scale, with its CI, p and residual τ²."""
    slope = regression.slope
    interval = (
        "Hartung-Knapp (t) intervals"
        if regression.ci_method.startswith("hksj")
        else "Wald (z) intervals"
    )
    return (
        f"Meta-regression (logit scale, REML, {interval}; the line's band is its 95% CI): slope "
        f"per 100 mg/day {_per_100(slope.estimate)} (95% CI {_per_100(slope.ci.low)} to "
        f"{_per_100(slope.ci.high)}), p = {number(slope.p_value, 3)}, "
        f"residual τ² = {number(regression.tau2, 3)}, k = {regression.k}."
    )


def _per_100(slope: float | None) -> str:
    return number(None if slope is None else 100 * slope, 3)


def risk_ratio_line(comparison: ComparisonResult, what: str) -> str:
    """A pooled Mantel-Haenszel risk ratio in words; `what` names the two sides compared."""
    ratio = comparison.ratio
    return (
        f"Mantel-Haenszel risk ratio, {what}: {number(ratio.estimate)} "
        f"(95% CI {number(ratio.ci.low)}–{number(ratio.ci.high)}), k = {comparison.k}."
    )


def outcome_sections(evidence: SliceEvidence, group: str, key_prefix: str) -> None:
    """A bordered section per outcome of `group` that has counts in the slice; the rest in one
    line."""
    analyses = evidence.outcomes(group)
    for pooled in analyses:
        if pooled.result is None:
            continue
        # Keyed as an outcome section: meeting mode gives each a screen and steps through them.
        with st.container(border=True, key=f"outcome_{key_prefix}_{pooled.outcome}"):
            st.subheader(pooled.label)
            pooled_block(evidence, pooled)
            forest(evidence, pooled, key=f"{key_prefix}_{pooled.outcome}")
    missing = [a.label for a in analyses if a.result is None]
    if missing:
        st.info(plain(f"Not reported as counts in this slice: {', '.join(missing)}."))


def forest(evidence: SliceEvidence, pooled: OutcomeAnalysis, key: str) -> None:
    """Forest plot with linked selection: a click highlights the study and offers to exclude it."""
    if pooled.result is None:
        return
    slice_words = evidence.caption()
    notes = [slice_words, result_sentence(pooled.result), method_line(pooled)]
    selectable_chart(evidence.forest_spec(pooled.outcome, highlighted()), key, notes)
    caption(slice_words)
    exclusion_control(key)
    provenance_of_number(evidence, pooled.outcome)


def chart(spec: dict, key: str, notes: Sequence[str]) -> None:
    """Render a cached Vega-Lite spec with the charts' own theme (Streamlit's collapses rows),
    with its download and its numbers as a table; `notes` go under the title of the downloaded
    file."""
    st.vega_lite_chart(spec, width="stretch", theme=None)
    chart_download(spec, key, notes)
    accessible.chart_data(spec, key)


def selectable_chart(spec: dict, key: str, notes: Sequence[str]) -> None:
    """Render a chart whose study markers can be clicked; a click highlights that study on
    every chart of the page (the rerun redraws them with the highlight)."""
    event = st.vega_lite_chart(spec, on_select="rerun", key=key, width="stretch", theme=None)
    chart_download(spec, key, notes)
    accessible.chart_data(spec, key)
    picked = _picked_study(event)
    if picked and picked != highlighted():
        state.highlight(picked)
        st.rerun()


def chart_download(spec: dict, key: str, notes: Sequence[str]) -> None:
    """The chart as shown, as a PNG for an evidence profile or a slide (twice the screen size, the
    notes and data version under its title). The file is made only when the button is clicked (a
    deferred download) and the click does not rerun the page. One button per chart, since every
    element adds to each filter change's redraw; `evidence.figures` makes SVG from Python."""
    active = data.active()
    lines = figures.export_notes(notes, active.label, active.key)
    st.download_button(
        "Download chart (PNG)",
        data=partial(figures.chart_file, spec, lines, "png"),
        file_name=f"anakinra-{key}.png",
        mime=figures.MIME["png"],
        on_click="ignore",
        key=f"{key}_png",
        type="tertiary",
        icon=":material/download:",
    )


def _picked_study(event: object) -> str | None:
    selection = getattr(event, "selection", None) or (
        event.get("selection") if isinstance(event, dict) else None
    )
    if not selection:
        return None
    from evidence.charts import PICK  # already imported: a chart was drawn (see data._charts)

    points = selection.get(PICK) or []
    for point in points:
        if isinstance(point, dict) and point.get("study_id"):
            return str(point["study_id"])
    return None


def table(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    column_config: dict[str, object] | None = None,
    **dataframe_args: object,
) -> None:
    """A table as people read it: codes as labels, gaps as "not reported", every header in
    words; a row of the study highlighted in the charts is shaded as it is there. (A selectable
    table's pick is read with `picked_row`, before the table is drawn.)"""
    config: dict[str, object] = {column: header(column) for column in columns or frame.columns}
    config |= column_config or {}
    # A link or check-box column keeps its empty cells empty (no link, no tick).
    kept = {
        column
        for column, setting in config.items()
        if isinstance(setting, dict)
        and setting.get("type_config", {}).get("type") in ("link", "checkbox")
    }
    shown = readable(frame[list(columns or frame.columns)].reset_index(drop=True), kept)
    dataframe_args = {"hide_index": True, **dataframe_args, "column_config": config}
    study = highlighted()
    marked = frame["study_id"].eq(study).tolist() if study and "study_id" in frame else []
    if not any(marked):
        st.dataframe(shown, **dataframe_args)
        return
    shade = f"background-color: {HIGHLIGHT_SHADE}"
    styled = shown.style.apply(lambda row: [shade if marked[row.name] else ""] * len(row), axis=1)
    st.dataframe(styled, **dataframe_args)
    st.caption(f"Shaded: **{plain(study)}**, highlighted in the charts.")


def exclusion_control(key: str) -> None:
    """Exclude (or include again) the highlighted study; re-pools every chart on every page."""
    study = highlighted()
    if not study:
        return
    rows = state.current_slice()
    excluded = study in rows.exclude
    shown = plain(study)
    label = f"Include {shown} again" if excluded else f"Exclude {shown} and re-pool"
    left, right = st.columns([3, 1])
    left.caption(f"Highlighted: **{shown}** (click a study in any chart to highlight it).")
    right.button(
        label,
        key=f"{key}_toggle",
        on_click=state.apply_everywhere,
        args=(rows.toggle_exclusion(study),),
    )


def provenance_of_number(evidence: SliceEvidence, outcome: str) -> None:
    """Where the highlighted study's numbers for this outcome were read: value, source, place in
    the source, the verbatim quote, how it was read, and every caveat, as lines to read (no
    table to scroll sideways)."""
    study = highlighted()
    if not study:
        return
    found = evidence.numbers_of(study, outcome)
    if found.empty:
        return
    with st.expander(f"Where {plain(study)}'s numbers for this outcome were read", expanded=True):
        for number_row in found.to_dict("records"):
            st.markdown(provenance_lines(number_row))


def provenance_lines(row: Mapping[str, object]) -> str:
    """One extracted number as a reader checks it: what, from where, in which words, with its
    caveats."""
    events, total, value = row.get("events"), row.get("total"), row.get("value")
    if not _missing(events) and not _missing(total):
        figure = f"{int(events)}/{int(total)}"  # type: ignore[call-overload]
    elif not _missing(value):
        unit = vocab.UNITS.labels.get(str(row.get("unit")), "")
        figure = f"{value:g} {unit}".strip()  # type: ignore[str-format]
    else:
        figure = NOT_REPORTED
    status = vocab.NUMBER_STATUS.labels.get(str(row.get("status")), "")
    lines = [
        f"**{plain(row.get('label'))}: {plain(figure)}**"
        + ("" if row.get("use_in_analysis") else " (not used: another report of it is)"),
        f"Source: {plain(row.get('source'))}, {plain(row.get('locator'))} — {plain(status)}",
        f"“{plain(row.get('quote'), limit=5_000)}”",
    ]
    caveats = [
        ("Arithmetic", row.get("derivation")),
        ("When sources disagree", row.get("conflict_note")),
        ("Caveat", row.get("caveat")),
    ]
    lines += [f"{name}: {plain(text)}" for name, text in caveats if not _missing(text) and text]
    return "  \n".join(lines)


# Each cohort fact shown with where it was read: (label, value columns, fact prefix in the query).
_COHORT_FACTS = (
    ("Patients", ("n_patients",), "n"),
    ("Products", ("products",), "product"),
    ("Dose", ("schedule", "dose_band"), "dose"),
    ("Grading", ("grading_system",), "grading"),
)


def provenance(facts: pd.DataFrame) -> None:
    """Each cohort of a study, every descriptive fact with its source, locator and quote."""
    for fact in facts.to_dict("records"):
        arm = vocab.ARMS.label(fact["arm"])
        indication = vocab.INDICATIONS.label(fact["indication"])
        title = plain(f"Cohort: {fact['label']} ({arm}, {indication})")
        with st.expander(title, expanded=True):
            for name, columns, prefix in _COHORT_FACTS:
                given = [(c, fact[c]) for c in columns if not _missing(fact[c])]
                shown = _fact_text(*given[0]) if given else NOT_REPORTED
                quote = fact[f"{prefix}_quote"]
                where = (
                    f" — {fact[f'{prefix}_source']}, {fact[f'{prefix}_locator']}: “{quote}”"
                    if not _missing(quote)
                    else ""
                )
                st.markdown(f"**{name}:** {plain(shown + where, limit=5_000)}")


def _missing(value: object) -> bool:
    """None, NaN or pandas' NA: a cell no source filled."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _fact_text(column: str, value: object) -> str:
    """A cohort fact in words (vocabulary codes by their labels)."""
    if column == "grading_system":
        return vocab.GRADING_SYSTEMS.label(str(value))
    if column == "dose_band":
        return vocab.DOSE_BANDS.label(str(value))
    if column == "n_patients":
        return str(int(value))  # type: ignore[call-overload]
    return str(value)


def chosen_outcome(analyses: Sequence[OutcomeAnalysis], view: View) -> OutcomeAnalysis:
    """The outcome the sidebar picked for single-outcome views, if it is among `analyses`,
    else the first of them."""
    return next((a for a in analyses if a.outcome == view.outcome), analyses[0])


def split_label(split: str) -> str:
    return vocab.SUBGROUP_DIMENSIONS.label(split)


def split_control(view: View) -> str:
    """The subgroup split, bound to the view (and so to the link); returns the split shown."""
    key = state.VIEW_WIDGET.format("split")
    st.session_state[key] = view.split
    st.segmented_control(
        "Split by",
        vocab.SUBGROUP_DIMENSIONS.codes,
        format_func=vocab.SUBGROUP_DIMENSIONS.label,
        key=key,
        on_change=_on_split,
    )
    return view.split


def _on_split() -> None:
    chosen = st.session_state[state.VIEW_WIDGET.format("split")]
    if chosen:  # clicking the selected segment again clears it: keep the split shown
        state.choose_split(chosen)


def outcome_card(population: str, code: str, evidence: SliceEvidence | None) -> None:
    """One outcome as a card: its name and population, the number to read aloud, interval, k
    and method, and what it rests on."""
    st.markdown(f"**{vocab.OUTCOMES.label(code)}**")
    who = vocab.POPULATION_WORDS[population]
    st.caption(plain(who[0].upper() + who[1:]))
    if evidence is None:
        st.markdown("not in this slice")
        st.caption("The indication filter in the sidebar leaves these cohorts out.")
        return
    pooled = evidence.outcome(code)
    if pooled.result is None:
        st.markdown("not estimable")
        caption(pooled.message or "")
        return
    result = pooled.result
    value, interval = headline(result)
    st.metric(pooled.label, value, label_visibility="collapsed")
    method = "single study, not pooled" if result.k == 1 else result.method
    st.caption(
        f"{interval} · k = {result.k} · {result.events_total}/{result.n_total} patients · {method}"
    )
    caption(coverage_line(evidence, pooled))
    if pooled.message:
        caption(pooled.message)


def empty_slice_notice(evidence: SliceEvidence) -> None:
    """A slice with no study says so, on every page."""
    if evidence.summary.studies == 0:
        st.warning(
            "No study matches these filters: every figure on this page is empty. Widen the "
            "filters in the sidebar, or use Reset filters.",
            icon=":material/filter_alt_off:",
        )


def with_gaps(
    frame: pd.DataFrame, not_reported: Sequence[str] = (), blank: Sequence[str] = ()
) -> pd.DataFrame:
    """`frame` with its empty cells in `not_reported` columns reading "not reported" and those
    in `blank` columns left empty (where a gap is not missing evidence), never "None"."""
    filled = frame.astype({c: object for c in [*not_reported, *blank]})
    for column, text in [*((c, NOT_REPORTED) for c in not_reported), *((c, "") for c in blank)]:
        filled[column] = filled[column].where(filled[column].notna(), text)
    return filled


def study_heading(record: pd.Series) -> str:
    """ "Park JH 2023": first author and year, or the study id when no author is given; as text
    (an uploaded author is shown as written, never as Markdown)."""
    author = record["first_author"]
    name = record["study_id"] if _missing(author) or author == NOT_REPORTED else author
    year = "" if _missing(record["year"]) else f" {int(record['year'])}"
    return plain(f"{name}{year}", limit=120)


def csv_download(frame: pd.DataFrame, label: str, file_name: str) -> None:
    """Exactly the rows and columns shown, as a CSV a spreadsheet opens safely."""
    st.download_button(label, export.frame_to_csv(frame), file_name, mime="text/csv")


def downloads(files: Sequence[data.Download]) -> None:
    """Download buttons in three columns; each file is made when its button is clicked."""
    columns = st.columns(3)
    for index, file in enumerate(files):
        columns[index % 3].download_button(
            file.label, file.make, file.file_name, mime=file.mime, on_click="ignore"
        )


def problems(found: Sequence[Problem]) -> None:
    """Every problem of a refused file, as sheet, row, column and message."""
    st.error(
        f"{count(len(found), 'problem')} found; nothing was loaded. Fix them and upload again."
    )
    table(
        pd.DataFrame(
            [
                {
                    "sheet": p.file,
                    "row": "whole sheet" if p.row is None else p.row,
                    "column": p.column or "whole row",
                    "problem": p.message,
                }
                for p in found
            ]
        )
    )
