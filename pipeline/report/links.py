"""Links inside the report: to a section (by its heading), to a record (its row in the Records
appendix) and to an error cause. One anchor rule for report.md (GitHub's heading ids) and report.html
(`html.py` gives every heading the same id), so a link works in both.

    section("int8 vs fp32")         # [int8 vs fp32](#int8-vs-fp32)
    record(r)                       # [`1a2b3c4d`](#r-1a2b3c4d)
    cause(3, title="runtime too old")  # [c3](#cause-3 "runtime too old"): the title is the tooltip
"""
from __future__ import annotations

import re

from pipeline.provenance import record_id
from pipeline.schema import Record


def slug(heading: str) -> str:
    """GitHub's heading id: the rendered text lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _text(t: str) -> str:
    """Link text that cannot end the link early or split a table cell."""
    return t.replace("[", "(").replace("]", ")").replace("|", "/")


def section(title: str, text: str | None = None) -> str:
    return f"[{_text(text or title)}](#{slug(title)})"


def record_anchor_id(r: Record) -> str:
    return f"r-{record_id(r)}"


def record_anchor(r: Record) -> str:
    """Placed in the record's appendix row (raw HTML: GitHub and html.py both keep it)."""
    return f'<a id="{record_anchor_id(r)}"></a>'


def record(r: Record) -> str:
    return f"[`{record_id(r)}`](#{record_anchor_id(r)})"


def records(rs: list[Record], limit: int = 6) -> str:
    """Links to the first `limit` records, then how many more."""
    out = " ".join(record(r) for r in rs[:limit])
    return out + (f" (+{len(rs) - limit} more)" if len(rs) > limit else "")


def cause_anchor_id(n: int) -> str:
    return f"cause-{n}"


def cause_anchor(n: int) -> str:
    return f'<a id="{cause_anchor_id(n)}"></a>'


def cause(n: int, text: str | None = None, title: str = "") -> str:
    """A link to cause n; `title` (the cause's name) is the tooltip a reader sees over it (GitHub and html.py)."""
    tip = f' "{title_text(title)}"' if title else ""
    return f"[{_text(text or f'c{n}')}](#{cause_anchor_id(n)}{tip})"


def title_text(t: str) -> str:
    """A link title that cannot end the title or the link early, or split a table cell."""
    return t.replace('"', "'").replace("|", "/").replace("\n", " ")
