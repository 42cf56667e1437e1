"""Streamlit's own floor for a filter change, measured next to the dashboard by bench_app.py.

A minimal app with the same kinds of elements as the Treatment page's first panel: a title, a
sidebar multiselect labelled "Exclude studies (sensitivity)" with the same study ids, a pooled
number line in bold, and one forest plot drawn by the dashboard's own `charts.forest_plot` and
sent as the dashboard sends it (`evidence.ui.vega`; three studies and a pooled row). Everything a
rerun shows is PRECOMPUTED once per process, so a rerun costs only Streamlit's script run, the
deltas on the websocket and the browser's redraw. The gap between the dashboard and this app is
what the dashboard's own work adds.

Run alone with: .venv/bin/streamlit run bench/floor_app.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run bench/floor_app.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from evidence import charts  # noqa: E402  (after the path fix above)
from evidence.ui.vega import vega_spec  # noqa: E402

# The shipped studies' ids, so the benchmark drives the same options in both apps.
STUDY_IDS = (
    "NCT04148430",
    "NCT04205838",
    "NCT04150913",
    "Strati2020",
    "Wehrli2022",
    "Gazeau2023",
    "Park2023",
    "Strati2023",
    "FHCC_OHSU2025",
    "Frigault2025",
    "IPTW_ASH2025",
    "LBCL2025",
    "Liang2025",
    "Frigault_prelim_abstract",
    "Santomasso2023_ref33",
    "StratiPilot_abstract",
)
# (study id, label, events, total): the sizes of the Treatment page's response outcome.
STUDIES = (
    ("LBCL2025", "LBCL single centre 2020-2024 - anakinra for ICANS", 31, 42),
    ("Strati2020", "Strati 2020 - treated for ICANS", 4, 6),
    ("Wehrli2022", "Wehrli 2022 - steroid-refractory ICANS", 9, 14),
)
Z = 1.959963984540054


def _wilson(events: int, total: int) -> tuple[float, float]:
    """Wilson 95% interval: closed form, so precomputing needs nothing beyond math."""
    p = events / total
    centre = (p + Z * Z / (2 * total)) / (1 + Z * Z / total)
    half = Z * math.sqrt(p * (1 - p) / total + Z * Z / (4 * total * total)) / (1 + Z * Z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _pooled_frame(excluded: frozenset[str]) -> tuple[str, pd.DataFrame]:
    """Fixed-effect logit pool of the studies left in: a pooled line and a forest frame."""
    kept = [s for s in STUDIES if s[0] not in excluded]
    rows: list[dict[str, object]] = []
    weights = []
    logits = []
    for study_id, label, events, total in kept:
        e, n = events + 0.5, total + 1.0
        logits.append(math.log(e / (n - e)))
        weights.append(1 / (1 / e + 1 / (n - e)))
        low, high = _wilson(events, total)
        rows.append(
            {
                "row_type": "study",
                "label": label,
                "study_id": study_id,
                "events": events,
                "total": total,
                "proportion": events / total,
                "ci_low": low,
                "ci_high": high,
                "pi_low": None,
                "pi_high": None,
                "weight": 0.0,
            }
        )
    total_weight = sum(weights)
    for row, weight in zip(rows, weights, strict=True):
        row["weight"] = 100 * weight / total_weight
    centre = sum(w * y for w, y in zip(weights, logits, strict=True)) / total_weight
    se = math.sqrt(1 / total_weight)

    def expit(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    estimate, low, high = expit(centre), expit(centre - Z * se), expit(centre + Z * se)
    events_total = sum(s[2] for s in kept)
    n_total = sum(s[3] for s in kept)
    rows.append(
        {
            "row_type": "pooled",
            "label": "Pooled",
            "study_id": None,
            "events": events_total,
            "total": n_total,
            "proportion": estimate,
            "ci_low": low,
            "ci_high": high,
            "pi_low": low,
            "pi_high": high,
            "weight": 100.0,
        }
    )
    line = (
        f"**{estimate:.1%}** (95% CI {low:.1%}–{high:.1%}) · k = {len(kept)}, "
        f"{events_total}/{n_total} patients"
    )
    return line, pd.DataFrame(rows)


TITLE = "Neurological response / improvement"


@st.cache_resource
def layout() -> dict[str, object]:
    """The forest plot's layout, built once per process."""
    return charts.forest_layout(TITLE).to_dict(validate=False)


@st.cache_resource
def precomputed(state: frozenset[str]) -> tuple[str, dict[str, object]]:
    """One state's pooled line and Vega-Lite spec, computed once per process on first use
    (closed-form pooling and the rows: a few ms; the benchmark's warm-up visits the states it
    times)."""
    line, frame = _pooled_frame(state)
    return line, vega_spec(layout(), charts.forest_data(frame.to_dict("records")))


st.set_page_config(page_title="Streamlit floor (benchmark)", layout="wide")
st.title("Streamlit floor")
excluded = st.sidebar.multiselect(
    "Exclude studies (sensitivity)", list(STUDY_IDS), key="exclude", placeholder="none"
)
relevant = frozenset(excluded) & {s[0] for s in STUDIES}
line, spec = precomputed(relevant if len(relevant) < len(STUDIES) else frozenset())
st.subheader(TITLE)
st.markdown(line)
st.vega_lite_chart(spec, on_select="rerun", key="forest", width="stretch", theme=None)
