"""Vega-Lite specs in the form Streamlit's frontend reads, so st.vega_lite_chart sends them as they
are: each named dataset as Arrow IPC stream bytes (streamlit/elements/vega_charts.py,
_marshall_chart_data passes bytes through; rows given as records it converts on every rerun)."""

from __future__ import annotations

import pyarrow as pa


def vega_spec(layout: dict, datasets: dict[str, list[dict]]) -> dict:
    """A chart layout (a spec without data) with its rows, ready for st.vega_lite_chart."""
    return {**layout, "datasets": {name: arrow_bytes(rows) for name, rows in datasets.items()}}


def arrow_bytes(rows: list[dict]) -> bytes:
    table = pa.Table.from_pylist(rows)  # straight from records, without a DataFrame
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
