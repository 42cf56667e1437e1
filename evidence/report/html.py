"""report.html: the slice's evidence as one self-contained page that opens with no network.

Rendered with Jinja2 (autoescape on: every value from the data is text), every chart the
dashboard's own layout (`evidence.charts`) with the slice's rows, drawn to SVG by vl-convert
(`evidence.figures.standalone_spec`) and put inline. A Content-Security-Policy meta element
allows nothing to be fetched (`default-src 'none'`; inline styles and data: images only), and
the page has no script: it reads the same in a browser that is offline.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from evidence import analysis, charts, figures, grade, vocab
from evidence.format import (  # as the pages print
    NOT_ESTIMABLE,
    number,
    pct,
    pct_interval,
    subgroup_test_line,
)
from evidence.report.numbers import DoseRegression, Numbers, Proportion, Ratio, Subgroups

TEMPLATES = Path(__file__).with_name("templates")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"


def result_sentence(item: Proportion) -> str:
    """components.result_sentence, as plain text."""
    result = item.pooled.result
    assert result is not None
    if result.k == 1:
        only = result.studies[0]
        return (
            f"One study only — {only.label}: {only.events}/{only.total} = {pct(only.proportion)} "
            f"(exact 95% CI {pct_interval(only.ci.low, only.ci.high)}). Nothing is pooled."
        )
    p = result.proportion
    return " · ".join(
        [
            f"{pct(p.estimate)} (95% CI {pct_interval(p.ci.low, p.ci.high)})",
            f"prediction interval {pct_interval(p.pi.low, p.pi.high)}"
            if result.k >= 3
            else "no prediction interval (fewer than 3 studies)",
            f"k = {result.k}, {result.events_total}/{result.n_total} patients",
            f"τ² = {number(result.tau2, 3)}, I² = {number(result.i2, 1)}%",
        ]
    )


def method_line(item: Proportion) -> str:
    pooled = item.pooled
    text = f"Method: {vocab.POOLING_METHODS.label(pooled.method)}"
    result = pooled.result
    if result is not None and result.fallback_reason:
        text += f" — shown instead: {result.method} ({result.fallback_reason})"
    return text


def slope_sentence(item: DoseRegression) -> str:
    slope = item.result.slope

    def per_100(value: float | None) -> str:
        return number(None if value is None else 100 * value, 3)

    return (
        f"Meta-regression (logit scale, REML): slope per 100 mg/day {per_100(slope.estimate)} "
        f"(95% CI {per_100(slope.ci.low)} to {per_100(slope.ci.high)}), "
        f"p = {number(slope.p_value, 3)}, residual τ² = {number(item.result.tau2, 3)}, "
        f"k = {item.result.k}."
    )


def risk_ratio_line(item: Ratio) -> str:
    ratio = item.result.ratio
    return (
        f"Mantel-Haenszel risk ratio, {item.what}: {number(ratio.estimate)} "
        f"(95% CI {number(ratio.ci.low)}–{number(ratio.ci.high)}), k = {item.result.k}."
    )


# ---- charts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    label: str  # the chart in one sentence (its aria-label)
    svg: Markup


_ID = re.compile(r'\bid="([^"]+)"')


def _svg(spec: dict, notes: Sequence[str], prefix: str) -> Markup:
    """A chart spec drawn to SVG, its ids made unique in the page (several SVGs share one
    document), without the XML declaration."""
    import vl_convert  # a large native module: loaded when a report is made

    svg = vl_convert.vegalite_to_svg(figures.standalone_spec(spec, notes))
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    for found in set(_ID.findall(svg)):
        svg = svg.replace(f'id="{found}"', f'id="{prefix}-{found}"')
        svg = svg.replace(f"url(#{found})", f"url(#{prefix}-{found})")
        svg = svg.replace(f'href="#{found}"', f'href="#{prefix}-{found}"')
    svg = svg.replace("<svg ", '<svg role="img" aria-hidden="true" ', 1)
    return Markup(svg)


def _spec(layout: Any, datasets: Mapping[str, list[dict]]) -> dict:
    return {**layout.to_dict(validate=False), "datasets": dict(datasets)}


def forest_figure(item: Proportion, caption: str, highlight: str | None, index: int) -> Figure:
    pooled = item.pooled
    spec = _spec(
        charts.forest_layout(pooled.label), charts.forest_data(pooled.forest_records(), highlight)
    )
    sentence = result_sentence(item)
    return Figure(
        f"Forest plot of {pooled.label} ({item.page}): {sentence}",
        _svg(spec, [caption, sentence, method_line(item)], f"c{index}"),
    )


def subgroup_figure(item: Subgroups, caption: str, index: int) -> Figure:
    records = analysis.subgroup_records(item.result)
    spec = _spec(charts.subgroup_layout(item.pooled.label), charts.subgroup_data(records))
    line = subgroup_test_line(item.result)
    return Figure(f"Subgroups: {item.title}. {line}", _svg(spec, [caption, line], f"c{index}"))


def dose_figure(numbers: Numbers, caption: str, index: int) -> Figure | None:
    pooled = numbers.dose
    if pooled is None:
        return None
    points = analysis.dose_points(pooled.rows)
    if points.empty:
        return None
    regression = next((r for r in numbers.regressions if r.pooled.outcome == pooled.outcome), None)
    line = analysis.regression_line(regression.result, points) if regression is not None else None
    layout = charts.dose_layout(pooled.label, line is not None and not line.empty)
    spec = _spec(layout, charts.dose_data(points, line, numbers.view.study))
    words = slope_sentence(regression) if regression is not None else "No meta-regression."
    return Figure(
        f"{pooled.label} against anakinra dose (mg/day), bubble area = patients. {words}",
        _svg(spec, [caption, words], f"c{index}"),
    )


def ratio_figure(item: Ratio, caption: str, index: int) -> Figure:
    title = f"{vocab.OUTCOMES.label(item.outcome)}: risk ratio, anakinra vs comparison cohort"
    spec = _spec(charts.ratio_layout(title), charts.ratio_data(item.result.to_frame()))
    line = risk_ratio_line(item)
    return Figure(f"{title}. {line}", _svg(spec, [caption, line], f"c{index}"))


# ---- methods text ------------------------------------------------------------------------------
def markdown_text(text: str) -> Markup:
    """The project's Markdown documents (docs/methods.md) as HTML: paragraphs, lists, bold,
    italics and code; links as their text. The text is escaped first."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(re.match(r"\s*([-*]|\d+\.)\s", line) or line.startswith("  ") for line in lines):
            items: list[str] = []
            for line in lines:
                if re.match(r"\s*([-*]|\d+\.)\s", line):
                    items.append(re.sub(r"^\s*([-*]|\d+\.)\s+", "", line))
                elif items:
                    items[-1] += " " + line.strip()
            blocks.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        elif block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")) + 2, 6)
            blocks.append(f"<h{level}>{_inline(block.lstrip('#').strip())}</h{level}>")
        else:
            blocks.append(f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>")
    return Markup("\n".join(blocks))


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", escaped)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


# ---- the page ----------------------------------------------------------------------------------
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pct"] = pct
    env.filters["pct_interval"] = pct_interval
    env.filters["number"] = number
    env.filters["cell"] = _table_cell
    env.filters["zip"] = lambda first, *others: zip(first, *others, strict=True)
    return env


def _table_cell(value: object) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def sof_rows(numbers: Numbers) -> list[dict[str, Any]]:
    """The summary of findings as the page's table and sections show it."""
    out = []
    for row in numbers.summary.rows:
        if row.studies == 0:
            effect = "not reported as counts"
        elif row.relative is not None:
            rel = row.relative
            effect = f"RR {number(rel.value)} ({number(rel.low)} to {number(rel.high)})"
            if row.absolute is not None and row.absolute.difference is not None:
                absolute = row.absolute
                effect += (
                    f"; risk with the comparator {absolute.comparator_per_1000:.0f} per 1,000, "
                    f"{_per_1000(absolute.difference)} per 1,000 (95% CI {_per_1000(absolute.low)}"
                    f" to {_per_1000(absolute.high)})"
                )
        else:
            estimate = row.estimate
            assert estimate is not None
            effect = f"{pct(estimate.value)} ({pct_interval(estimate.low, estimate.high)})"
            if row.studies >= 3:
                effect += f"; prediction interval {pct_interval(estimate.pi_low, estimate.pi_high)}"
        domains = [
            {
                "name": grade.DOMAIN_LABELS[d.suggestion.domain],
                "suggested": grade.level_label(d.suggestion.domain, d.suggestion.level),
                "why": d.suggestion.reason,
                "figures": d.suggestion.figures,
                "decided": None
                if d.decision is None
                else grade.level_label(d.suggestion.domain, d.decision.level),
                "reason": None if d.decision is None else d.decision.reason,
            }
            for d in row.domains
        ]
        out.append(
            {
                "row": row,
                "effect": effect,
                "certainty": row.certainty.words,
                "level": row.certainty.level,
                "domains": domains,
            }
        )
    return out


def _per_1000(value: float | None) -> str:
    if value is None:
        return NOT_ESTIMABLE
    return f"{abs(round(value))} {'more' if value > 0 else 'fewer'}"


def render(
    numbers: Numbers,
    *,
    provenance: Mapping[str, str],
    generated: str,
    caption: str,
    tables: Mapping[str, pd.DataFrame],
    references: Sequence[str],
    methods: str,
    r_script: str,
    notices: Sequence[str],
) -> str:
    """The report page. `generated` (UTC) is the only value that changes from one run to the
    next on the same query and data."""
    index = iter(range(1, 10_000))
    highlight = numbers.view.study
    pages = []
    for page in ("Treatment", "Prophylaxis", "Safety"):
        sections = []
        for item in numbers.page_proportions(page):
            ratio = next(
                (r for r in numbers.ratios if r.page == page and r.outcome == item.pooled.outcome),
                None,
            )
            sections.append(
                {
                    "item": item,
                    "sentence": result_sentence(item),
                    "method": method_line(item),
                    "notes": item.pooled.result.notes if item.pooled.result else (),
                    "message": item.pooled.message
                    if item.pooled.result and item.pooled.result.k != 1
                    else None,
                    "figure": forest_figure(item, caption, highlight, next(index)),
                    "ratio": ratio,
                    "ratio_line": risk_ratio_line(ratio) if ratio else None,
                    "ratio_figure": ratio_figure(ratio, caption, next(index)) if ratio else None,
                }
            )
        pages.append({"name": page, "sections": sections})
    subgroups = [
        {
            "item": s,
            "line": subgroup_test_line(s.result),
            "figure": subgroup_figure(s, caption, next(index)),
        }
        for s in numbers.subgroups
    ]
    dose = {
        "pooled": numbers.dose,
        "figure": dose_figure(numbers, caption, next(index)),
        "regression": [slope_sentence(r) for r in numbers.regressions],
        "comparisons": [
            {"item": r, "line": risk_ratio_line(r)} for r in numbers.ratios if r.page == "Dose"
        ],
    }
    template = _environment().get_template("report.html.j2")
    return template.render(
        csp=CSP,
        numbers=numbers,
        provenance=provenance,
        generated=generated,
        caption=caption,
        sof=sof_rows(numbers),
        footnotes=numbers.summary.footnotes,
        framing=grade.FRAMING_WORDS,
        pages=pages,
        subgroups=subgroups,
        dose=dose,
        tables=tables,
        references=references,
        methods=markdown_text(methods),
        r_script=r_script,
        notices=notices,
    )
