"""The Summary of findings page's pieces: a row with its numbers, certainty and statement; its
five GRADE domains with the figures behind each suggestion and the panel's form to decide them;
the footnotes; and the notice when a link's judgements were made on other data.

The panel's decisions and thresholds live in the view, and so in the link: recording them here
writes the URL, and a copied link restores them on any server.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from evidence import grade
from evidence.filters import View
from evidence.format import number, pct, pct_interval, plain
from evidence.grade import Decision, PanelSettings
from evidence.sof import Footnote, SofRow, SummaryOfFindings
from evidence.ui import data, state

# Drawn, not typed: a font's circle glyphs do not render alike everywhere (one PNG renderer drew
# the empty circle filled), and the symbols must read the same on a projector and in an export.
_CIRCLE = '<circle cx="{x}" cy="9" r="7.5" fill="{fill}" stroke="#1A1A1A" stroke-width="1.5"/>'
_PLUS = '<path d="M{a} 9 H{b} M{x} 3.5 V14.5" stroke="#FFFFFF" stroke-width="2"/>'


def certainty_symbols(level: int | None) -> str:
    """GRADE's four-circle symbol for a certainty level as inline SVG, with its words for screen
    readers (no symbol while the row is not yet graded)."""
    if level is None:
        return (
            '<span role="img" aria-label="Certainty of evidence: not yet graded">'
            "<strong>Not yet graded</strong></span>"
        )
    words = grade.CERTAINTY_WORDS[level]
    shapes = []
    for index in range(4):
        x = 9 + 20 * index
        filled = index < level
        shapes.append(_CIRCLE.format(x=x, fill="#1A1A1A" if filled else "#FFFFFF"))
        if filled:
            shapes.append(_PLUS.format(a=x - 4.5, b=x + 4.5, x=x))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="80" height="18" viewBox="0 0 80 18" '
        f'aria-hidden="true">{"".join(shapes)}</svg>'
    )
    return (
        f'<span role="img" aria-label="Certainty of evidence: {words} ({level} of 4)">'
        f"{svg} <strong>{words}</strong></span>"
    )


def panel_in_force(view: View) -> PanelSettings:
    """The panel's settings to apply: those of the link when they were made on the data in use
    (or on no data yet), none when made on other data (the page asks first)."""
    panel = view.panel
    if panel.data_version and panel.data_version != data.data_version():
        return PanelSettings()
    return panel


def other_data_notice(view: View) -> None:
    """A link's judgements made on another data version are not applied silently."""
    panel = view.panel
    if not panel.data_version or panel.data_version == data.data_version():
        return
    st.warning(
        f"The judgements in this link were made on data version {plain(panel.data_version)}; "
        f"the data in use is {data.data_version()}. They are not applied: check them against "
        "these numbers, then apply them.",
        icon=":material/sync_problem:",
    )
    st.button(
        "Apply these judgements to this data",
        on_click=_confirm_on_this_data,
        key="confirm_judgements",
    )


def _confirm_on_this_data() -> None:
    state.confirm_panel(data.data_version())


def table(summary: SummaryOfFindings) -> None:
    """The summary of findings at a glance, as GRADE tables show it: outcome, patients (studies),
    effect, certainty, what it means. The rows below give each one's domains."""
    lines = [
        "| Patients | Outcome | № of patients (studies) | Effect (95% CI) | Certainty | "
        "What it means |",
        "|---|---|---|---|---|---|",
    ]
    for sof_row in summary.rows:
        if sof_row.studies == 0:
            effect = "not reported as counts"
        elif sof_row.relative is not None:
            rel = sof_row.relative
            effect = f"RR {number(rel.value)} ({number(rel.low)} to {number(rel.high)})"
        else:
            estimate = sof_row.estimate
            assert estimate is not None
            effect = f"{pct(estimate.value)} ({pct_interval(estimate.low, estimate.high)})"
        notes = "".join(f"<sup>{n}</sup>" for n in sof_row.footnotes)
        lines.append(
            f"| {plain(sof_row.section)} | {plain(sof_row.label)} | "
            f"{sof_row.patients} ({sof_row.studies}) | {effect} | "
            f"{sof_row.certainty.words}{notes} | {plain(sof_row.statement)} |"
        )
    st.markdown("\n".join(lines), unsafe_allow_html=True)


def row(sof_row: SofRow) -> None:
    """One outcome: who and how many, the estimate, the certainty, the statement, and the five
    domains behind the certainty. An outcome no study reports is one line."""
    if sof_row.studies == 0:
        st.markdown(
            f"**{plain(sof_row.label)}** ({sof_row.studies_in_slice} studies in this slice): "
            f"{plain(sof_row.note or '')} Not graded."
        )
        return
    with st.container(border=True, key=f"sof_{sof_row.id.replace('.', '_')}"):
        st.subheader(plain(sof_row.label))
        st.caption(
            f"{sof_row.studies} of {sof_row.studies_in_slice} studies in this slice report this "
            f"outcome · {sof_row.patients} of {sof_row.patients_in_slice} patients in the slice "
            f"pooled · {plain(sof_row.method)}"
        )
        st.markdown(_estimate_line(sof_row))
        st.markdown(certainty_symbols(sof_row.certainty.level), unsafe_allow_html=True)
        notes = "".join(f"<sup>{n}</sup>" for n in sof_row.footnotes)
        st.markdown(plain(sof_row.statement) + notes, unsafe_allow_html=bool(notes))
        st.caption(plain(sof_row.framing_words))
        if sof_row.note:
            st.caption(plain(sof_row.note))
        with st.expander("GRADE domains: suggested from the data, decided by the panel"):
            _domains(sof_row)


def _estimate_line(sof_row: SofRow) -> str:
    if sof_row.relative is not None:
        rel = sof_row.relative
        text = (
            f"Relative effect: **RR {number(rel.value)}** (95% CI {number(rel.low)} to "
            f"{number(rel.high)})"
        )
        absolute = sof_row.absolute
        if absolute is not None and absolute.difference is not None:
            text += (
                f" · risk with the comparator {absolute.comparator_per_1000:.0f} per 1,000; "
                f"{_per_1000(absolute.difference)} per 1,000 (95% CI "
                f"{_per_1000(absolute.low)} to {_per_1000(absolute.high)})"
            )
        return text
    estimate = sof_row.estimate
    if estimate is None:
        return "Not estimable: no study in this slice reports it as counts."
    text = f"**{pct(estimate.value)}** (95% CI {pct_interval(estimate.low, estimate.high)})"
    if sof_row.studies >= 3:
        text += f" · prediction interval {pct_interval(estimate.pi_low, estimate.pi_high)}"
    return text


def _per_1000(value: float | None) -> str:
    if value is None:
        return "not estimable"
    return f"{abs(round(value))} {'more' if value > 0 else 'fewer'}"


def _domains(sof_row: SofRow) -> None:
    columns = st.columns(len(sof_row.domains))
    for column, domain in zip(columns, sof_row.domains, strict=True):
        suggestion = domain.suggestion
        with column:
            st.markdown(f"**{grade.DOMAIN_LABELS[suggestion.domain]}**")
            for name, value in suggestion.figures:
                st.caption(f"{plain(name)}: {plain(value)}")
            suggested = grade.level_label(suggestion.domain, suggestion.level)
            st.markdown(f"Suggested: **{suggested}**")
            st.caption(plain(suggestion.reason))
            if domain.decision is not None:
                decided = grade.level_label(suggestion.domain, domain.decision.level)
                st.markdown(f"Panel: **{decided}** — {plain(domain.decision.reason)}")
    _judgement_form(sof_row)


def _judgement_form(sof_row: SofRow) -> None:
    """The panel's levels, reasons and thresholds for this row, recorded together (a form: a
    level and its reason are entered before anything reruns)."""
    key = _key(sof_row)
    with st.form(f"judge_{key}", border=False):
        columns = st.columns(len(sof_row.domains))
        for column, domain in zip(columns, sof_row.domains, strict=True):
            name = domain.suggestion.domain
            with column:
                st.selectbox(
                    f"Panel: {grade.DOMAIN_LABELS[name].lower()}",
                    grade.LEVELS,
                    index=grade.LEVELS.index(domain.level),
                    format_func=lambda value, d=name: grade.level_label(d, value),
                    key=f"{key}_{name}_level",
                )
                st.text_input(
                    "Reason (a footnote)",
                    value=domain.decision.reason if domain.decision else "",
                    key=f"{key}_{name}_reason",
                    max_chars=grade.REASON_LIMIT,
                )
        ratio = sof_row.framing == "comparative"
        shown = ", ".join(
            f"{value:g}" if ratio else f"{100 * value:g}" for value in sof_row.thresholds
        )
        st.text_input(
            "Decision thresholds (risk ratios, e.g. 0.75, 1.25)"
            if ratio
            else "Decision thresholds (percent, e.g. 50)",
            value=shown,
            key=f"{key}_thresholds",
            help="The panel's own: where the estimate would change a recommendation. Imprecision "
            "and inconsistency are judged against them; without them a labelled default applies.",
        )
        st.form_submit_button("Record the panel's judgements", on_click=_on_record, args=(sof_row,))
    for problem in st.session_state.pop(f"{key}_problems", []):
        st.error(problem)


def _key(sof_row: SofRow) -> str:
    return sof_row.id.replace(".", "_")


def _on_record(sof_row: SofRow) -> None:
    """The form's callback: record the row's decisions, or keep its problems to show."""
    key = _key(sof_row)
    chosen = {
        d.suggestion.domain: (
            st.session_state[f"{key}_{d.suggestion.domain}_level"],
            st.session_state[f"{key}_{d.suggestion.domain}_reason"],
        )
        for d in sof_row.domains
    }
    ratio = sof_row.framing == "comparative"
    problems = _record(sof_row, chosen, st.session_state[f"{key}_thresholds"], ratio)
    if problems:
        st.session_state[f"{key}_problems"] = problems


def _record(
    sof_row: SofRow, chosen: dict[str, tuple[str, str]], thresholds_text: str, ratio: bool
) -> list[str]:
    """Write the row's decisions and thresholds into the view (and link); every reason a
    decision needs must be given."""
    problems: list[str] = []
    decisions: list[Decision] = []
    for domain in sof_row.domains:
        name = domain.suggestion.domain
        level, reason = chosen[name]
        reason = " ".join(reason.split())
        differs = level != domain.suggestion.level or domain.suggestion.level == "not_assessable"
        if differs and not reason:
            problems.append(
                f"{grade.DOMAIN_LABELS[name]}: a level other than the suggestion (or for a domain "
                "the data cannot assess) needs a reason; it becomes a footnote."
            )
        if differs or reason:
            decisions.append(Decision(sof_row.id, name, level, reason))  # type: ignore[arg-type]
    values: list[float] = []
    for part in thresholds_text.replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            value = float(part.strip().rstrip("%"))
        except ValueError:
            problems.append(f"Thresholds: {plain(part.strip(), 40)} is not a number.")
            continue
        value = value if ratio else value / 100
        if not 0 < value < (100 if ratio else 1):
            problems.append(f"Thresholds: {plain(part.strip(), 40)} is out of range.")
        else:
            values.append(value)
    if problems:
        return problems
    panel = panel_in_force(state.stored_view())
    kept = tuple(d for d in panel.decisions if d.row != sof_row.id)
    kept_thresholds = tuple(t for t in panel.thresholds if t[0] != sof_row.id)
    state.set_panel(
        PanelSettings(
            kept + tuple(decisions),
            kept_thresholds + tuple((sof_row.id, v) for v in sorted(set(values))),
            data.data_version(),
        )
    )
    return []


def footnotes(notes: Sequence[Footnote]) -> None:
    """The panel's reasons, numbered as the rows cite them."""
    if not notes:
        return
    st.subheader("Footnotes: the panel's reasons")
    st.markdown(
        "\n".join(
            f"{note.number}. {plain(grade.DOMAIN_LABELS[note.domain])} ({plain(note.row)}): "
            f"{plain(note.text)}"
            for note in notes
        )
    )


def sections(summary: SummaryOfFindings) -> None:
    """The rows under their section headers, in order."""
    current = None
    for sof_row in summary.rows:
        if sof_row.section != current:
            current = sof_row.section
            st.header(plain(current))
        row(sof_row)
