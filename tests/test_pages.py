"""Every page under Streamlit's AppTest: defaults, each filter from the URL, malformed links, and
the pooled number on screen equal to the engine's number for the same rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from evidence import analysis
from evidence.filters import Slice, View
from evidence.format import pct, pct_interval

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "overview": "pages/overview.py",
    "sof": "pages/sof.py",
    "treatment": "pages/treatment.py",
    "prophylaxis": "pages/prophylaxis.py",
    "dose": "pages/dose.py",
    "safety": "pages/safety.py",
    "studies": "pages/studies.py",
    "methods": "pages/methods.py",
}
# One URL per filter, each with a value the shipped data has.
URL_FILTERS = [
    {"indication": "treatment"},
    {"indication": "prophylaxis"},
    {"product": ["axi-cel", "tisa-cel"]},
    {"product": "not_reported"},
    {"dose_min": "150", "dose_max": "400"},
    {"dose_band": "le200"},
    {"route": "SC"},
    {"grading": "ASTCT"},
    {"design": "prospective"},
    {"pubtype": "full_paper"},
    {"year_min": "2020", "year_max": "2023"},
    {"min_n": "10"},
    {"window": "review"},
    {"outcome": "grade5_icans"},
    {"method": "reml_hksj"},
    {"method": "freeman_tukey"},
    {"split": "grading_system"},
    {"study": "Strati2020"},
    {"exclude": "Strati2020"},
]
TIMEOUT = 60


@pytest.fixture
def app(shipped_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("ANAKINRA_DB", str(shipped_db))
    yield AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def _open(at: AppTest, page: str, params: dict[str, str | list[str]] | None = None) -> AppTest:
    at.query_params.update(params or {})
    at.run()
    if page != "overview":
        at.switch_page(PAGES[page])
        at.run()
    return at


def _shown(markdown: str) -> str:
    """Markdown source as the text a reader sees of it (backslash escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _text(at: AppTest) -> str:
    """Every text element of the page, as shown (escapes resolved, emphasis marks kept)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [str(m.value) for m in at.metric]
        + [i.value for i in at.info]
        + [w.value for w in at.warning]
    )
    return _shown("\n".join(parts))


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_without_parameters(app: AppTest, page: str) -> None:
    at = _open(app, page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"
    assert "nan" not in _text(at).split()


@pytest.mark.parametrize("params", URL_FILTERS, ids=lambda p: "&".join(f"{k}" for k in p))
@pytest.mark.parametrize(
    "page", ["overview", "sof", "treatment", "prophylaxis", "dose", "safety", "studies"]
)
def test_each_url_filter_renders_every_page(app: AppTest, page: str, params: dict) -> None:
    at = _open(app, page, params)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", list(PAGES))
def test_malformed_link_shows_a_notice_not_an_error(app: AppTest, page: str) -> None:
    at = _open(
        app, page, {"product": "cilta-cel", "dose_min": "a lot", "method": "bayes", "zzz": "1"}
    )
    assert not at.exception, [e.value for e in at.exception]
    notices = _shown(" ".join(i.value for i in at.info))
    assert "cilta-cel" in notices and "'a lot'" in notices and "zzz" in notices
    # every bad value dropped, nothing kept
    assert at.session_state["slice"] == Slice() and at.session_state["view"] == View()


@pytest.mark.parametrize("page", list(PAGES))
def test_sidebar_reflects_the_link_on_every_page(app: AppTest, page: str) -> None:
    at = _open(app, page, {"product": ["axi-cel", "tisa-cel"], "grading": "ASTCT"})
    assert at.multiselect(key="filter_product").value == ["axi-cel", "tisa-cel"]
    assert at.multiselect(key="filter_grading").value == ["ASTCT"]


def _engine(con: duckdb.DuckDBPyConnection, rows: Slice, code: str, method: str = "glmm"):
    """The engine's result for an outcome of a slice, computed without the dashboard's caches:
    the slice's query, its chosen counts, one pool."""
    counts = analysis.in_slice(analysis.every_poolable_row(con), analysis.cohort_slice(con, rows))
    by_outcome = analysis.counts_by_outcome(counts)
    return analysis.pool(code, by_outcome.get(code, counts.iloc[0:0]), method)


def test_changing_a_setting_writes_the_url_and_repools(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    at = _open(app, "overview")
    at.selectbox(key="view_method").set_value("reml_hksj").run()
    assert at.query_params["method"] in (["reml_hksj"], "reml_hksj")
    expected = _engine(shipped_con, Slice().within("treatment"), "icans_response", "reml_hksj")
    assert expected.result is not None
    assert pct(expected.result.proportion.estimate) in [str(m.value) for m in at.metric]


def test_overview_shows_the_engines_pooled_number(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    """Each card pools its outcome in the population it is about, never both together."""
    at = _open(app, "overview")
    for population, code in (("treatment", "icans_response"), ("prophylaxis", "any_icans")):
        expected = _engine(shipped_con, Slice().within(population), code)
        assert expected.result is not None, code
        shown = [str(m.value) for m in at.metric]
        if expected.result.k == 1:
            assert pct(expected.result.studies[0].proportion) in shown, code
        else:
            assert pct(expected.result.proportion.estimate) in shown, code
    cards = _text(at)
    assert "Patients given anakinra for ICANS" in cards
    assert "Patients given anakinra as prophylaxis" in cards


def test_single_study_card_shows_the_observed_proportion(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    """One study: its own proportion with its exact (Clopper-Pearson) interval, not the model's
    Wald interval (nor, with 0 events, the 0.5-corrected model value)."""
    at = _open(app, "overview")
    single = _engine(shipped_con, Slice().within("prophylaxis"), "any_icans")
    assert single.result is not None and single.result.k == 1
    study = single.result.studies[0]
    assert pct(study.events / study.total) in [str(m.value) for m in at.metric]
    exact = pct_interval(study.ci.low, study.ci.high)
    model = pct_interval(single.result.proportion.ci.low, single.result.proportion.ci.high)
    assert exact != model
    assert f"exact 95% CI {exact}" in _text(at) and model not in _text(at)


def test_treatment_page_pooled_sentence_matches_the_engine(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    at = _open(app, "treatment")
    rows = Slice().within("treatment")
    assert rows is not None
    expected = _engine(shipped_con, rows, "icans_response")
    assert expected.result is not None and expected.result.k >= 2
    assert f"**{pct(expected.result.proportion.estimate)}**" in _text(at)


def test_review_figures_show_the_product_inconsistency(app: AppTest) -> None:
    at = _open(app, "overview")
    figures = at.dataframe[0].value
    assert (figures["sum_check"] == "disagrees").any()
    assert figures["check_message"].str.contains("139").any()


def test_reset_filters_clears_the_url(app: AppTest) -> None:
    at = _open(app, "overview", {"grading": "ASTCT"})
    reset = next(b for b in at.sidebar.button if b.label == "Reset filters")
    reset.click().run()
    assert not at.exception
    assert dict(at.query_params) == {}
    assert at.multiselect(key="filter_grading").value == []


def test_empty_slice_says_so_instead_of_a_number(app: AppTest) -> None:
    at = _open(app, "treatment", {"min_n": "100000"})
    assert not at.exception
    assert "Not reported as counts in this slice: Neurological response" in _text(at)


def test_a_slice_without_counts_pools_nothing_and_says_so(app: AppTest) -> None:
    """Without Strati 2023 and Park 2023 (ASTCT since its conference abstract was read), the ASTCT
    prophylaxis slice is one study (Liang 2025) that gives no counts."""
    at = _open(app, "prophylaxis", {"exclude": ["Strati2023", "Park2023"], "grading": "ASTCT"})
    assert not at.exception
    assert not at.get("vega_lite_chart"), "a chart was drawn for a slice with nothing to pool"
    said = [_shown(i.value) for i in at.info]
    for outcome in ("any-grade ICANS", "grade ≥ 3 ICANS", "any-grade CRS", "grade ≥ 3 CRS"):
        assert f"No study in this slice reports {outcome} as a count." in said


def test_a_single_study_outcome_shows_that_study_not_a_pool(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    single = _engine(shipped_con, Slice(indication=("prophylaxis",)), "any_icans")
    assert single.result is not None and single.result.k == 1
    only = single.result.studies[0]
    at = _open(app, "prophylaxis")
    text = _text(at)
    assert f"One study only — **{only.label}**: {only.events}/{only.total}" in text
    assert "Nothing is pooled." in text


def test_studies_page_lists_reports_with_links(app: AppTest) -> None:
    at = _open(app, "studies")
    table = at.dataframe[0].value
    assert "Wehrli2022" in set(table["study_id"])
    assert table["pubmed"].dropna().str.startswith("https://pubmed.ncbi.nlm.nih.gov/").all()


def test_highlighted_study_can_be_excluded_and_everything_repools(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    at = _open(app, "treatment", {"study": "Wehrli2022"})  # what a click on its marker sets
    button = next(b for b in at.button if b.label == "Exclude Wehrli2022 and re-pool")
    button.click().run()
    assert at.query_params["exclude"] in ("Wehrli2022", ["Wehrli2022"])
    rows = Slice(exclude=("Wehrli2022",)).within("treatment")
    assert rows is not None
    expected = _engine(shipped_con, rows, "icans_response")
    assert expected.result is not None
    assert f"**{pct(expected.result.proportion.estimate)}**" in _text(at)
    assert any(b.label == "Include Wehrli2022 again" for b in at.button)


def test_selecting_a_study_shows_where_each_number_was_read(app: AppTest) -> None:
    at = _open(app, "studies")
    table = at.dataframe[0].value
    row = int((table["study_id"] == "Park2023").to_numpy().nonzero()[0][0])
    # AppTest has no row click; the selection widget's state is what a click would set.
    at.session_state["studies_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Park JH 2023: where every number was read" in [h.value for h in at.header]
    numbers = at.dataframe[1].value
    severe = numbers[(numbers["outcome"] == "Grade ≥ 3 ICANS") & numbers["use_in_analysis"]]
    assert severe["quote"].str.contains("9.7%").all() and len(severe) == 1
    # The verification's caveat stands beside the number it concerns (6% vs 9.7%).
    caveats = numbers["caveat"].dropna().astype(str)
    assert caveats.str.contains("6% where the trial's own 2023 report gives 9.7%").any()


def test_subgroup_test_line_reads_the_engine_result_in_words() -> None:
    from evidence.format import subgroup_test_line
    from evidence.meta.subgroups import subgroup_analysis

    counts = ([4, 9, 31, 12, 20, 3], [6, 14, 42, 30, 25, 10], list("aaabbb"))
    z_test = subgroup_analysis(*counts)
    line = subgroup_test_line(z_test)
    test = z_test.moderator_test
    assert f"Q = {test.statistic:.2f}, df = 1, p = {test.p_value:.3f}" in line
    assert "τ² per subgroup: Q =" in line
    f_test = subgroup_analysis(*counts, ci="hksj")
    assert f"F = {f_test.moderator_test.statistic:.2f}, df = 1, 4" in subgroup_test_line(f_test)
    lonely = subgroup_analysis([4, 9], [6, 14], ["a", "b"])
    assert lonely.moderator_test.statistic is None
    assert subgroup_test_line(lonely).endswith("not estimable in this slice (notes below).")
    assert "None" not in subgroup_test_line(lonely)


def _shaded_rows(table: object) -> set[int]:
    """Row numbers a styled table shades with the highlight colour (Styler CSS selectors)."""
    from evidence.ui.components import HIGHLIGHT_SHADE

    styler = table.proto.arrow_data.styler
    shaded: set[int] = set()
    for rule in styler.styles.split("}"):
        if HIGHLIGHT_SHADE in rule:
            shaded |= {int(n) for n in re.findall(r"_row(\d+)_col\d+", rule)}
    return shaded


@pytest.mark.parametrize("study", ["Park2023", "Strati2023"])
def test_tables_shade_the_study_highlighted_in_the_charts(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection, study: str
) -> None:
    """Park2023 has figures in the 'other figures' table; Strati2023 in the comparator table."""
    own_labels = {r[0] for r in shipped_con.execute(
        "SELECT label FROM cohorts WHERE study_id = ?", [study]
    ).fetchall()}  # fmt: skip
    at = _open(app, "prophylaxis", {"study": study})  # what a click on its marker sets
    assert not at.exception
    styled = [t for t in at.dataframe if t.proto.arrow_data.HasField("styler")]
    assert styled, "no table shaded the highlighted study"
    for table in styled:
        labels = table.value["label"].tolist()
        own = {i for i, label in enumerate(labels) if label in own_labels}
        assert own and _shaded_rows(table) == own
    assert f"Shaded: **{study}**" in _text(at)


def test_studies_table_shades_the_highlighted_study_and_a_picked_row_moves_it(
    app: AppTest,
) -> None:
    at = _open(app, "studies", {"study": "Wehrli2022"})  # clicked in a chart elsewhere
    table = at.dataframe[0]
    ids = table.value["study_id"].tolist()
    assert _shaded_rows(table) == {ids.index("Wehrli2022")}
    # Picking Park2023's row makes it the highlighted study, shaded in this very run.
    at.session_state["studies_table"] = {"selection": {"rows": [ids.index("Park2023")]}}
    at.run()
    assert at.session_state["view"].study == "Park2023"
    assert at.query_params["study"] in ("Park2023", ["Park2023"])
    assert _shaded_rows(at.dataframe[0]) == {ids.index("Park2023")}
    assert "Shaded: **Park2023**" in _text(at)


@pytest.mark.parametrize(
    ("page", "charts"),
    [
        ("treatment", {"forest_icans_response", "subgroups_icans_response_product"}),
        ("prophylaxis", {"forest_any_icans", "forest_grade3plus_icans"}),
        ("dose", {"dose_icans_response"}),
    ],
)
def test_every_chart_offers_a_png_download(app: AppTest, page: str, charts: set) -> None:
    """Each chart drawn has its download, made only on click (deferred, no rerun)."""
    at = _open(app, page)
    buttons = {b.proto.id.rsplit("-", 1)[-1]: b.proto for b in at.get("download_button")}
    for chart in charts:
        button = buttons[f"{chart}_png"]
        assert button.label == "Download chart (PNG)"
        assert button.deferred_file_id and button.ignore_rerun
    assert len(buttons) == len(at.get("vega_lite_chart"))  # no chart without its download


def test_cached_charts_are_the_slices_own(
    fixture_con: duckdb.DuckDBPyConnection, evidence_of
) -> None:
    """Two slices never share a cached chart; the same slice, method and outcome do."""
    everything = evidence_of(fixture_con)
    first = str(everything.outcome("icans_response").rows["study_id"].iloc[0])
    fewer = evidence_of(fixture_con, Slice(exclude=(first,)))
    assert everything.forest_spec("icans_response", None) != fewer.forest_spec(
        "icans_response", None
    )
    assert everything.forest_spec("icans_response", None) == everything.forest_spec(
        "icans_response", None
    )
    by_dl = evidence_of(fixture_con, method="dl")
    assert by_dl.outcome("icans_response").result != everything.outcome("icans_response").result


def test_changing_the_outcome_split_or_method_does_not_rerun_the_slice_query(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slice's query runs once per slice: a view setting only changes what is shown."""
    st.cache_data.clear()
    st.cache_resource.clear()
    calls: list[Slice] = []
    slice_query = analysis.cohort_slice

    def counted(con: duckdb.DuckDBPyConnection, rows: Slice):
        calls.append(rows)
        return slice_query(con, rows)

    monkeypatch.setattr(analysis, "cohort_slice", counted)
    at = _open(app, "treatment")
    assert calls, "the page never asked for its slice"
    before = len(calls)
    # A sidebar change reruns the page fragment alone; the full run after it redraws the sidebar
    # for the next change, as the browser keeps it.
    at.selectbox(key="view_outcome").set_value("grade5_icans").run()
    at.run()
    at.selectbox(key="view_method").set_value("dl").run()
    at.run()
    at.segmented_control(key="view_split").set_value("dose_band").run()
    assert not at.exception
    assert "DerSimonian-Laird" in _text(at)
    assert len(calls) == before, f"the slice query ran again for {calls[before:]}"
    at.multiselect(key="filter_product").set_value(["axi-cel"]).run()
    assert len(calls) > before, "a new slice must run its query"


def test_the_app_serves_a_database_built_from_a_panels_file_and_says_so(
    fixture_con: duckdb.DuckDBPyConnection,
    evidence_of,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`python -m evidence.extraction.build --from panel.xlsx`, then the app as `make run` starts
    it (no ANAKINRA_DB): the panel's numbers, a banner naming its file, and the file kept."""
    from evidence.extraction import build, export

    panel = tmp_path / "panel.xlsx"
    panel.write_bytes(export.export_workbook(fixture_con))
    target = tmp_path / "anakinra.duckdb"
    assert build.main(["--from", str(panel), "--out", str(target)]) == 0
    checksum = build.stored_info(target)["sheets_sha256"]
    monkeypatch.delenv("ANAKINRA_DB", raising=False)
    monkeypatch.setattr(build, "DATABASE", target)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "This dashboard serves the extraction built from panel.xlsx" in _text(at)
    expected = evidence_of(fixture_con).outcome("icans_response").result
    assert pct(expected.proportion.estimate) in [str(m.value) for m in at.metric]
    assert build.stored_info(target)["sheets_sha256"] == checksum  # not rebuilt from the sheets
    st.cache_resource.clear()  # the next test's app opens its own database


def test_a_forged_widget_value_is_dropped_not_raised(app: AppTest) -> None:
    """Widget values come from the browser: one the sidebar never offered (sent by a modified
    client) goes through the link's checks and is dropped, like a bad link value."""
    at = _open(app, "treatment")
    at.multiselect(key="filter_product").set_value(["axi-cel", "cilta-cel"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["slice"] == Slice(product=("axi-cel",))


# ---- the summary of findings -------------------------------------------------------------------
def _sof_row_text(at: AppTest, label: str) -> str:
    """The text of the SoF table's line for an outcome (its first match)."""
    table = next(m.value for m in at.markdown if m.value.startswith("| Patients | Outcome"))
    return next(line for line in _shown(table).splitlines() if f"| {label} |" in line)


@pytest.mark.parametrize(
    "params",
    [{}, {"exclude": "Strati2020"}, {"method": "reml_hksj"}, {"product": "axi-cel"}],
    ids=["all", "exclude", "reml", "product"],
)
def test_sof_estimates_are_the_engines_for_the_slice(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection, params: dict
) -> None:
    at = _open(app, "sof", params)
    assert not at.exception, [e.value for e in at.exception]
    rows = Slice(**{k: (v,) for k, v in params.items() if k in ("exclude", "product")})
    expected = _engine(
        shipped_con, rows.within("treatment"), "icans_response", params.get("method", "glmm")
    )
    line = _sof_row_text(at, "Neurological response / improvement")
    if expected.result is None:
        assert "not reported as counts" in line
    elif expected.result.k == 1:
        assert pct(expected.result.studies[0].proportion) in line
    else:
        assert pct(expected.result.proportion.estimate) in line


JUDGED = {
    "judge": "treatment.icans_response~imprecision~not_serious~the panel accepts 59-81%",
    "threshold": "treatment.icans_response~0.5",
}


def test_a_link_restores_the_panels_judgements(app: AppTest) -> None:
    plain = _open(app, "sof")
    before = _sof_row_text(plain, "Neurological response / improvement")
    at = _open(app, "sof", JUDGED)
    assert not at.exception
    line = _sof_row_text(at, "Neurological response / improvement")
    assert line != before and "<sup>1</sup>" in line
    assert "the panel accepts 59-81%" in _text(at)
    assert at.session_state["view"].panel.thresholds == (("treatment.icans_response", 0.5),)


def test_recording_a_judgement_changes_the_certainty_and_adds_a_footnote(app: AppTest) -> None:
    at = _open(app, "sof")
    before = _sof_row_text(at, "Neurological response / improvement")
    assert "| Very low |" in before
    key = "treatment_icans_response"
    for domain, reason in (
        ("indirectness", "the panel's question includes these products"),
        ("publication_bias", "the registered trials are known"),
    ):
        at.selectbox(key=f"{key}_{domain}_level").set_value("not_serious")
        at.text_input(key=f"{key}_{domain}_reason").input(reason)
    next(b for b in at.button if b.label == "Record the panel's judgements").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.run()
    line = _sof_row_text(at, "Neurological response / improvement")
    assert "| Low<sup>1</sup><sup>2</sup> |" in line  # two levels up, two footnotes
    judged = str(at.query_params["judge"])
    assert "treatment.icans_response~indirectness~not_serious~the panel's question" in judged
    assert "graded_on" in at.query_params


def test_a_level_changed_without_a_reason_is_refused(app: AppTest) -> None:
    at = _open(app, "sof")
    at.selectbox(key="treatment_icans_response_imprecision_level").set_value("not_serious")
    next(b for b in at.button if b.label == "Record the panel's judgements").click().run()
    assert any("needs a reason" in e.value for e in at.error)
    assert "judge" not in at.query_params


def test_judgements_made_on_other_data_wait_for_confirmation(app: AppTest) -> None:
    at = _open(app, "sof", {**JUDGED, "graded_on": "0123456789ab"})
    assert not at.exception
    assert any("made on data version 0123456789ab" in _shown(w.value) for w in at.warning)
    line = _sof_row_text(at, "Neurological response / improvement")
    assert "<sup>" not in line  # not applied
    next(b for b in at.button if b.label == "Apply these judgements to this data").click().run()
    at.run()
    assert "<sup>1</sup>" in _sof_row_text(at, "Neurological response / improvement")
    assert not at.warning


def test_a_highlighted_study_shows_where_its_number_was_read(
    app: AppTest, shipped_con: duckdb.DuckDBPyConnection
) -> None:
    """Clicking a study in a chart (the link's study) opens, under that chart, the source, the
    place in it, the verbatim quote and how the number was read, with its caveats."""
    (quote, locator, derivation) = shipped_con.execute(
        "SELECT quote, locator, derivation FROM outcomes WHERE study_id = 'Wehrli2022' "
        "AND outcome = 'icans_response' AND use_in_analysis"
    ).fetchone()
    at = _open(app, "treatment", {"study": "Wehrli2022"})
    assert not at.exception
    panel = next(e for e in at.expander if "Wehrli2022" in _shown(e.label))
    text = _shown("\n".join(m.value for m in panel.markdown))
    assert quote in text and locator in text
    if derivation:
        assert derivation in text
