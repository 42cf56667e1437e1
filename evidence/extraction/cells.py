"""One spreadsheet cell's text made safe to open, and the same text read back.

Anything the dashboard offers for download may be opened in Excel or LibreOffice, and the text it
contains came from people (a panel's upload, a quote copied from a PDF). A cell that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return can be run as a formula there (CSV/formula
injection), so every text cell written goes through `safe_cell`, which prefixes such a cell with
one single quote as the OWASP CSV-injection guidance recommends. Numbers are left alone (a plain
negative number is not a formula), so a download still sorts and sums as numbers.

The prefix is reversible: `unescape_cell` (applied by `upload` to every cell it reads) removes
exactly one leading quote when it precedes one of those characters, and `safe_cell` also escapes a
text that already begins with quotes before such a character (one more quote), so that
`unescape_cell(safe_cell(text)) == text` for every text. An export therefore loads back unchanged.
Both directions live here, apart from the writers and the reader, so that reading an upload does
not depend on the export code.
"""

from __future__ import annotations

import re
from typing import Any

# The characters OWASP lists as able to start a formula in a spreadsheet.
INJECTION_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# A number written the way people write numbers ("-3", "+2.5", "1e-3"): never a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_escape(text: str) -> bool:
    """True if a spreadsheet could read `text` as a formula, or it looks like an escaped one."""
    unquoted = text.lstrip(ESCAPE)
    if not unquoted.startswith(INJECTION_CHARACTERS):
        return False
    # A plain number is data, not a formula; but "'-5" must still gain a quote to round-trip.
    return unquoted != text or not _PLAIN_NUMBER.fullmatch(text)


def safe_cell(value: Any) -> Any:
    """`value` made safe for a spreadsheet: risky text gets one leading `'`; other types pass.

    Only `str` is changed: numbers, booleans, dates and None are returned as they are, so a
    negative number stays a number. See the module docstring for why the quote is reversible.
    """
    if isinstance(value, str) and _needs_escape(value):
        return ESCAPE + value
    return value


def shown(text: str, limit: int = 80) -> str:
    """Text from inside an upload (a name, a header, a cell), safe to echo in a message: control
    characters replaced by `?` and at most `limit` characters, the rest cut with an ellipsis.

    Everything an upload contains is chosen by whoever made the file, so no message repeats it
    whole: a 60,000-character zip member name or a 4,000-character cell would otherwise fill the
    page (and the server's memory, once per problem).
    """
    printable = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return printable if len(printable) <= limit else printable[:limit] + "…"


def unescape_cell(text: str) -> str:
    """The inverse of `safe_cell` for text: drop one `'` that precedes `= + - @`, tab or CR.

    Spreadsheets use the same convention (a leading apostrophe means "this is text"), so a panel
    that typed `'=...` by hand gets the same result as a cell that `safe_cell` escaped.
    """
    if text.startswith(ESCAPE) and text[1:].lstrip(ESCAPE).startswith(INJECTION_CHARACTERS):
        return text[1:]
    return text
