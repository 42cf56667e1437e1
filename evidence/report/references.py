"""The studies of a slice for a reference manager: RIS and BibTeX, one record per study.

What the extraction holds of a study is its first author, title, year, venue (as printed:
"Blood Adv 2023;7(21):6785-6789", from which journal, volume, issue and pages are read when it
has that form), publication type, PMID, DOI and address. Only the first author is recorded, so
the author list ends with "et al." (RIS) or "and others" (BibTeX).

RIS is written with rispy without its "1." header lines (the spec's header-less writer), CRLF
line ends, UTF-8 (RIS has no encoding declaration); BibTeX with bibtexparser v2, every field
LaTeX-encoded (`&`, `%`, `_`, accents), key = study id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import rispy
from bibtexparser import Library, write_string
from bibtexparser.middlewares import LatexEncodingMiddleware
from bibtexparser.model import Entry, Field

# "Journal 2023;7(21):6785-6789", "Journal 2025;146(Supplement 1):712 (ASH 2025 abstract)"
_VENUE = re.compile(
    r"^(?P<journal>.+?)\s+(?P<year>\d{4})\s*;\s*(?P<volume>[^(:;]+?)\s*"
    r"(?:\((?P<issue>[^)]*)\))?\s*(?::\s*(?P<pages>[A-Za-z]?\d+(?:\s*[-–]\s*[A-Za-z]?\d+)?))?"
    r"(?:\s*\((?P<note>[^)]*)\))?\s*$"
)


@dataclass(frozen=True)
class Venue:
    journal: str | None
    volume: str | None = None
    issue: str | None = None
    start_page: str | None = None
    end_page: str | None = None
    note: str | None = None


def parse_venue(value: object) -> Venue:
    """Journal, volume, issue and pages from a venue as the sheets print it; the whole text as
    the journal when it has another form ("conference abstract (meeting not visible)")."""
    text = _text(value)
    if text is None:
        return Venue(None)
    found = _VENUE.match(text.strip())
    if not found:
        return Venue(text.strip())
    start = end = None
    if found["pages"]:
        start, _, end = found["pages"].replace("–", "-").partition("-")
        start, end = start.strip(), end.strip() or None
    return Venue(
        found["journal"].strip(),
        found["volume"].strip() or None,
        (found["issue"] or "").strip() or None,
        start,
        end,
        found["note"],
    )


def _text(value: object) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def _year(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def _ris_author(first_author: str) -> str:
    """ "Strati P" -> "Strati, P" (RIS wants "Last, Initials")."""
    parts = first_author.rsplit(" ", 1)
    if len(parts) == 2 and parts[1].isupper() and len(parts[1]) <= 3:
        return f"{parts[0]}, {parts[1]}"
    return first_author


RIS_TYPES = {
    "full_paper": "JOUR",
    "letter": "JOUR",
    "abstract": "CPAPER",
    "registry": "DBASE",
    "news_report": "NEWS",
}
WORK_TYPES = {
    "letter": "Letter",
    "abstract": "Conference abstract",
    "registry": "Trial registry record",
    "news_report": "News report",
}


class PlainRis(rispy.RisWriter):
    """rispy's writer without the "1." line it puts before each record, with CRLF line ends."""

    NEWLINE = "\r\n"

    def set_header(self, count: int) -> str:
        return ""


def ris_records(studies: pd.DataFrame, data_version: str) -> list[dict]:
    records = []
    for study in studies.to_dict("records"):
        kind = str(study.get("publication_type") or "")
        venue = parse_venue(_text(study.get("venue")))
        record: dict = {"type_of_reference": RIS_TYPES.get(kind, "GEN")}
        author = _text(study.get("first_author"))
        if author:
            record["authors"] = [_ris_author(author), "et al."]
        for key, value in (
            ("title", _text(study.get("title"))),
            ("year", _year(study.get("year"))),
            ("volume", venue.volume),
            ("number", venue.issue),
            ("start_page", venue.start_page),
            ("end_page", venue.end_page),
            ("doi", _text(study.get("doi"))),
            ("type_of_work", WORK_TYPES.get(kind)),
            ("custom1", kind or None),
        ):
            if value:
                record[key] = value
        if venue.journal:
            record[
                "secondary_title" if kind == "abstract" and not venue.volume else "journal_name"
            ] = venue.journal
        pmid = _text(study.get("pmid"))
        if pmid:
            record["accession_number"] = f"PMID:{pmid}"
        urls = [u for u in (_text(study.get("url")),) if u]
        if pmid:
            urls.append(f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/")
        if urls:
            record["urls"] = list(dict.fromkeys(urls))
        record["notes"] = [f"study_id={study['study_id']}; data version {data_version[:12]}"]
        record["keywords"] = ["anakinra", "ICANS", "CAR-T"]
        records.append(record)
    return records


def ris(studies: pd.DataFrame, data_version: str) -> str:
    """The studies as RIS text, one record per row, in the rows' order."""
    if studies.empty:
        return ""
    return rispy.dumps(ris_records(studies, data_version), implementation=PlainRis)


VERBATIM_FIELDS = ("url", "doi")  # read by BibTeX as they are: never LaTeX-encoded


class _LatexEncoding(LatexEncodingMiddleware):
    """LaTeX-encode every field but the addresses (an encoded URL or DOI is a broken one)."""

    def __init__(self) -> None:
        super().__init__(enclose_urls=False)

    def transform_entry(self, entry: Entry, library: Library) -> Entry:  # type: ignore[override]
        kept = [f for f in entry.fields if f.key in VERBATIM_FIELDS]
        entry.fields = [f for f in entry.fields if f.key not in VERBATIM_FIELDS]
        encoded = super().transform_entry(entry, library)
        target = encoded if isinstance(encoded, Entry) else entry
        target.fields = [*target.fields, *kept]
        return encoded  # type: ignore[return-value]


BIB_TYPES = {"full_paper": "article", "letter": "article", "abstract": "inproceedings"}


def bibtex(studies: pd.DataFrame, data_version: str) -> str:
    """The studies as BibTeX, key = study id, every field LaTeX-encoded."""
    library = Library()
    for study in studies.to_dict("records"):
        kind = str(study.get("publication_type") or "")
        entry_type = BIB_TYPES.get(kind, "misc")
        venue = parse_venue(_text(study.get("venue")))
        fields: list[tuple[str, str | None]] = []
        author = _text(study.get("first_author"))
        if author:
            fields.append(("author", f"{_ris_author(author)}. and others".replace("..", ".")))
        fields.append(("title", _text(study.get("title"))))
        if entry_type == "article":
            fields.append(("journal", venue.journal))
        elif entry_type == "inproceedings":
            fields.append(("booktitle", venue.journal))
        else:
            fields.append(("howpublished", venue.journal))
        pages = venue.start_page
        if pages and venue.end_page:
            pages = f"{pages}--{venue.end_page}"
        pmid = _text(study.get("pmid"))
        notes = [f"study_id={study['study_id']}"]
        if pmid:
            notes.insert(0, f"PMID: {pmid}")
        if kind in WORK_TYPES:
            notes.append(WORK_TYPES[kind].lower())
        fields += [
            ("year", _year(study.get("year"))),
            ("volume", venue.volume),
            ("number", venue.issue),
            ("pages", pages),
            ("doi", _text(study.get("doi"))),
            ("url", _text(study.get("url"))),
            ("pmid", pmid),
            ("note", "; ".join(notes)),
            ("keywords", "anakinra; ICANS; CAR-T"),
        ]
        library.add(
            Entry(entry_type, str(study["study_id"]), [Field(k, v) for k, v in fields if v])
        )
    return write_string(library, prepend_middleware=[_LatexEncoding()])
