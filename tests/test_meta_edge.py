"""Edge cases and plain-English notes that the golden grid does not cover by itself."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from evidence.meta import (
    compare_groups,
    leave_one_out,
    meta_regression,
    pool_proportions,
    subgroup_analysis,
)
from evidence.meta.results import StudyColumns


def _finite_or_none(obj: Any, path: str = "result") -> None:
    """Every number in a result, nested records and studies included, is finite or None."""
    if isinstance(obj, float):
        assert math.isfinite(obj), f"{path} = {obj}"
    elif isinstance(obj, (tuple, StudyColumns)):  # per-study columns read as records
        for i, value in enumerate(obj):
            _finite_or_none(value, f"{path}[{i}]")
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _finite_or_none(getattr(obj, f.name), f"{path}.{f.name}")


def test_small_k_notes() -> None:
    r2 = pool_proportions([3, 10], [20, 25], method="REML")
    assert any("Fewer than 3" in n for n in r2.notes)
    r4 = pool_proportions([3, 10, 2, 5], [20, 25, 10, 30], method="REML")
    assert any("Fewer than 5" in n for n in r4.notes)
    r9 = pool_proportions([3] * 9, [20] * 9, method="DL")
    assert not any("Fewer" in n for n in r9.notes)


def test_all_events_note_and_values() -> None:
    r = pool_proportions([10, 8, 12], [10, 8, 12], method="REML")
    assert any("Every patient" in n for n in r.notes)
    assert r.proportion.estimate is not None and 0.9 < r.proportion.estimate < 1
    _finite_or_none(r)


def test_zero_study_count_note() -> None:
    r = pool_proportions([0, 4, 9], [12, 30, 40], method="REML")
    assert any("1 of 3 studies have 0 events" in n for n in r.notes)


def test_labels_flow_to_studies_and_frame() -> None:
    r = pool_proportions([2, 5, 9], [10, 12, 20], method="DL", labels=["A", "B", "C"])
    assert [s.label for s in r.studies] == ["A", "B", "C"]
    frame = r.to_frame()
    assert frame.loc[frame.row_type == "pooled", "proportion"].item() == r.proportion.estimate
    with pytest.raises(ValueError):
        pool_proportions([2, 5], [10, 12], labels=["A"])


def test_leave_one_out_labels() -> None:
    loo = leave_one_out([2, 5, 9], [10, 12, 20], labels=["A", "B", "C"])
    assert list(loo.omitted) == ["A", "B", "C"] and len(loo) == 3
    assert loo.q_df == 1 and all(row["q"] is not None for row in loo.records())


def test_compare_no_events_in_one_arm() -> None:
    r = compare_groups([0, 0], [10, 12], [3, 4], [10, 12], measure="OR", method="MH")
    assert r.ratio.estimate is None and any("does not exist" in n for n in r.notes)
    _finite_or_none(r)
    iv = compare_groups([0, 0], [10, 12], [3, 4], [10, 12], measure="OR", method="REML")
    assert iv.ratio.estimate is not None and iv.ratio.estimate < 1


def test_compare_empty_and_single() -> None:
    assert compare_groups([], [], [], [], method="MH").ratio.estimate is None
    one = compare_groups([3], [20], [7], [21], measure="RR", method="DL")
    assert one.k == 1 and one.tau2 is None and one.ratio.pi.low is None
    frame = compare_groups([3, 4], [20, 22], [7, 9], [21, 20]).to_frame()
    assert list(frame.row_type) == ["study", "study", "pooled"]


def test_subgroup_single_group_and_glmm_note() -> None:
    r = subgroup_analysis([2, 5, 9], [10, 12, 20], ["a", "a", "a"], method="DL")
    assert r.moderator_test.statistic is None and any("Only one subgroup" in n for n in r.notes)
    g = subgroup_analysis(
        [2, 5, 9, 4, 7], [10, 12, 20, 15, 9], ["a", "a", "b", "b", "b"], method="GLMM"
    )
    assert any("logit inverse-variance REML" in n for n in g.notes)
    assert g.moderator_test.statistic is not None
    assert g.separate_tau2_test.statistic is not None


def test_subgroup_flags_single_study_groups() -> None:
    r = subgroup_analysis([2, 5, 9, 4], [10, 12, 20, 15], ["a", "a", "b", "c"], method="REML")
    flags = {p.name: p.single_study for p in r.subgroups}
    assert flags == {"a": False, "b": True, "c": True}
    assert any("'b' has one study" in n for n in r.notes)


def test_meta_regression_too_few_or_constant() -> None:
    few = meta_regression([2, 5], [10, 12], [1.0, 2.0])
    assert few.slope.estimate is None and few.notes
    assert few.fitted_line([1.0, 2.0]).proportion.estimate == (None, None)
    const = meta_regression([2, 5, 7], [10, 12, 14], [1.0, 1.0, 1.0])
    assert const.slope.estimate is None and any("same value" in n for n in const.notes)
    ok = meta_regression([2, 5, 7, 9], [10, 12, 14, 30], [1.0, 2.0, 3.0, 4.0], ci="hksj")
    assert ok.slope.estimate is not None and any("imprecise" in n for n in ok.notes)
    line = ok.fitted_line([1.0, 4.0])
    fitted = line.proportion
    bands = zip(fitted.ci_low, fitted.estimate, fitted.ci_high, strict=True)
    assert all(lo is not None and hi is not None and lo <= est <= hi for lo, est, hi in bands)
