"""One vocabulary: what the data dictionary documents, what the sheet contract accepts and what
the sidebar offers are the same codes, so a value offered anywhere is accepted everywhere."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from evidence import vocab
from evidence.extraction.contract import SHEETS, SHEETS_BY_NAME, Column
from evidence.extraction.validate import validate_sheets
from evidence.filters import FILTERS

ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = ROOT / "data" / "README.md"


def _dictionary_codes() -> dict[tuple[str, str], set[str]]:
    """The backticked codes the data dictionary lists per (sheet, column)."""
    text = DICTIONARY.read_text(encoding="utf-8")
    codes: dict[tuple[str, str], set[str]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        sheet = section.split(".csv", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3 and cells[0] in SHEETS_BY_NAME.get(sheet, SHEETS[0]).column_names:
                listed = set(re.findall(r"`([^`]+)`", cells[1])) - {";"}
                if listed:
                    codes[(sheet, cells[0])] = listed
        outcome_list = re.search(r"Outcome vocabulary:(.*?)\n\n", section, re.S)
        if outcome_list:
            codes[(sheet, "outcome")] = set(re.findall(r"`([^`]+)`", outcome_list.group(1)))
    return codes


def _coded_columns() -> list[tuple[str, Column]]:
    return [(s.name, c) for s in SHEETS for c in s.columns if c.vocab]


@pytest.mark.parametrize(("sheet", "column"), _coded_columns(), ids=lambda v: getattr(v, "name", v))
def test_the_data_dictionary_lists_exactly_the_codes_the_contract_accepts(
    sheet: str, column: Column
) -> None:
    documented = _dictionary_codes().get((sheet, column.name))
    assert documented == set(column.vocab), f"{sheet}.{column.name}"


def test_every_coded_column_takes_its_codes_from_the_vocabulary_module() -> None:
    declared = {v.codes for v in vars(vocab).values() if isinstance(v, vocab.Vocabulary)}
    for sheet, column in _coded_columns():
        assert column.vocab in declared, f"{sheet}.{column.name} declares its own codes"


def _contract_codes(qualified: str) -> set[str]:
    sheet, name = qualified.split(".")
    return set(SHEETS_BY_NAME[sheet].column(name).vocab)


# Choices that select by a rule of their own clause rather than by a code of the column.
DERIVED_CHOICES = {"product": {"mixed", "not_reported"}}
# Codes reached through a broader choice (a cohort whose sub-indication is not reported is in
# its indication's choice).
REACHED_THROUGH_ANOTHER_CHOICE = {"indication": {"not_reported"}}


@pytest.mark.parametrize("f", [f for f in FILTERS if f.kind == "choices"], ids=lambda f: f.key)
def test_every_choice_the_sidebar_offers_is_a_code_the_contract_accepts_and_back(f) -> None:
    accepted = set().union(*(_contract_codes(c) for c in f.columns))
    selects = {code for choice in f.vocabulary for code in (f.covers or {}).get(choice, (choice,))}
    derived = DERIVED_CHOICES.get(f.key, set())
    assert selects - derived <= accepted, f"offered but never valid: {selects - derived - accepted}"
    unreachable = accepted - selects - REACHED_THROUGH_ANOTHER_CHOICE.get(f.key, set())
    assert not unreachable, f"valid in a sheet but no choice selects it: {unreachable}"


def test_a_value_the_dictionary_documents_passes_validation() -> None:
    """The drift this module ended: a sheet using `publication_type = not_reported`, as the
    dictionary allows, is valid."""
    folder = ROOT / "tests" / "fixtures" / "good"
    raw = {path.stem: path.read_bytes() for path in folder.glob("*.csv")}
    rows = list(csv.DictReader(io.StringIO(raw["studies"].decode("utf-8"))))
    rows[0]["publication_type"] = "not_reported"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    raw["studies"] = out.getvalue().encode("utf-8")
    _, problems = validate_sheets(raw)
    assert problems == []


def _dictionary_types() -> dict[tuple[str, str], str]:
    """The type cell the data dictionary gives each (sheet, column)."""
    types: dict[tuple[str, str], str] = {}
    for section in re.split(r"^## ", DICTIONARY.read_text(encoding="utf-8"), flags=re.M)[1:]:
        sheet = section.split(".csv", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3 and sheet in SHEETS_BY_NAME:
                for name in cells[0].split(","):
                    types[(sheet, name.strip())] = cells[1]
    return types


@pytest.mark.parametrize(
    ("sheet", "column"),
    [(s.name, c) for s in SHEETS for c in s.columns if c.bounds],
    ids=lambda v: getattr(v, "name", v),
)
def test_the_data_dictionary_gives_each_number_column_the_range_the_contract_checks(
    sheet: str, column: Column
) -> None:
    assert _dictionary_types()[(sheet, column.name)] == f"{column.kind}, {column.range_text}"


def test_a_value_just_outside_a_documented_range_is_refused_with_its_cell() -> None:
    folder = ROOT / "tests" / "fixtures" / "good"
    raw = {path.stem: path.read_bytes() for path in folder.glob("*.csv")}
    raw["studies"] = raw["studies"].replace(b"Alpha A,2020,", b"Alpha A,2101,", 1)
    raw["cohorts"] = raw["cohorts"].replace(b"axi-cel,100,200", b"axi-cel,100,10000.5", 1)
    _, problems = validate_sheets(raw)
    assert [str(p) for p in problems] == [
        "cohorts.csv:2:dose_mg_day_max: '10000.5' is outside 0–10,000, the range dose_mg_day_max "
        "allows",
        "studies.csv:2:year: '2101' is outside 1990–2100, the range year allows",
    ]
