"""report.md -> a self-contained report.html (inline CSS, PNGs embedded as base64 data URIs).

    python -m pipeline report     # writes results/report.html beside results/report.md

It opens from disk with no server and no network. The converter handles the Markdown subset the
report writes: headings (with GitHub's ids, `links.slug`), pipe tables, "- " lists, images (consecutive
image lines: one row of pictures), paragraphs, `code`, **bold**, links inside the report `[text](#id)` with
an optional title `[c3](#cause-3 "its name")` (a tooltip; a table cell shows its links' titles too),
record anchors `<a id="..."></a>`, status spans (`table.status_cell`: `<span class="st-<status>"
title="...">text</span>`), fenced code blocks, and folded text (`<details>`, `<summary>` lines).

Tables scroll inside their box (the page never scrolls sideways) and sort by a click on a column's
header (a few lines of inline script, `SORT`: numbers by value, text alphabetically; a second click
reverses). A cell that starts with a status word (`parity.STATUS_MARK`: ok, partial, FAILED, Apple only,
...) is tinted with the policy's colour of that status (`parity.STATUS_COLOR`).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from pipeline.parity import STATUS_COLOR, STATUS_MARK
from pipeline.report.links import slug

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1500px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
h1 { margin: 0.2em 0 0.4em; } h2:first-of-type { margin-top: 0.6em; }
p, li { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
td.n { text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[data-dir="1"]::after { content: " \\25B2"; } th[data-dir="-1"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; font-size: 0.92em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
.row { display: flex; flex-wrap: wrap; gap: 0 1em; } .row figure { flex: 1 1 520px; max-width: 840px; margin: 0.3em 0; }
details { margin: 0.3em 0 0.6em 1.5em; } summary { cursor: pointer; color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; font-size: 0.85em; }
"""


_IMG = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)\s*$")


def _tint(hex_color: str, keep: float = 0.35) -> str:
    """The status colour mixed with white: a cell background dark text stays readable on."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * keep):02x}" for c in rgb)


# a cell's leading status word -> the status (longest words first: "Apple only" before "ok")
_MARKS = sorted(((m, st) for st, m in STATUS_MARK.items() if m not in ("–", "")), key=lambda x: -len(x[0]))


def _status_css() -> str:
    """A status span (`table.status_cell`) in the status's colour; a table cell led by a status word, tinted."""
    return "".join(f".st-{s} {{ background: {c}; padding: 0 4px; border-radius: 3px; }} "
                   f"td.st-{s} {{ background: {_tint(c)} !important; padding: 3px 7px; border-radius: 0; }}\n"
                   for s, c in STATUS_COLOR.items())


def _cell_status(text: str) -> str:
    for mark, st in _MARKS:
        if text == mark or text.startswith(mark + " "):
            return st
    return ""


# click a header: sort its table's rows by that column (numbers by value, else text); again: reversed
SORT = """<script>
document.addEventListener('click', e => {
  const th = e.target.closest('th'); if (!th || e.target.closest('a')) return;
  const body = th.closest('table').tBodies[0], i = th.cellIndex, dir = th.dataset.dir === '1' ? -1 : 1;
  const key = td => { const t = (td ? td.textContent : '').trim(), m = t.match(/^([-+]?[\\d.,]*\\d)\\s?([kMG])?/);
                      return m ? [0, parseFloat(m[1].replace(/,/g, '')) * ({k: 1e3, M: 1e6, G: 1e9}[m[2]] || 1)]
                               : [1, t.toLowerCase()]; };
  const rows = [...body.rows].sort((a, b) => { const x = key(a.cells[i]), y = key(b.cells[i]);
    return dir * (x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)); });
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = dir;
  rows.forEach(r => body.appendChild(r));
});
</script>"""


_LINK = re.compile(r'\[([^\]]+)\]\((#[\w\-]+)(?: "([^"]*)")?\)')
_ANCHOR = re.compile(r'<a id="([\w\-]+)"></a>')
_STATUS = re.compile(r'<span class="st-([\w]+)" title="([^"<>]*)">([^<]*)</span>')
_FOLD = re.compile(r"^\s*(<details>|</details>|<summary>.*</summary>)\s*$")


def _inline(text: str) -> str:
    """Escape, then in-report links and anchors, `code` and **bold** (code spans are protected from
    the bold rule)."""
    out = []
    for part in re.split(r'(\[[^\]]+\]\(#[\w\-]+(?: "[^"]*")?\)|<a id="[\w\-]+"></a>|<span class="st-\w+" '
                         r'title="[^"<>]*">[^<]*</span>)', text):
        if m := _LINK.fullmatch(part):
            tip = f' title="{html.escape(m.group(3))}"' if m.group(3) else ""
            out.append(f'<a href="{m.group(2)}"{tip}>{_inline(m.group(1))}</a>')
        elif m := _STATUS.fullmatch(part):
            out.append(f'<span class="st-{m.group(1)}" title="{html.escape(m.group(2))}">'
                       f"{_code_bold(m.group(3))}</span>")
        elif m := _ANCHOR.fullmatch(part):
            out.append(f'<a id="{m.group(1)}"></a>')
        else:
            out.append(_code_bold(part))
    return "".join(out)


def _code_bold(text: str) -> str:
    out = []
    for part in re.split(r"(`[^`]*`)", text):
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def _fold(line: str) -> str:
    """A `<details>`/`</details>`/`<summary>text</summary>` line as HTML (the summary's text escaped)."""
    if m := re.match(r"^\s*<summary>(.*)</summary>\s*$", line):
        return f"<summary>{_inline(m.group(1))}</summary>"
    return line.strip()


def _cells(line: str) -> list[str]:
    """A table line's cells: split at the pipes that are not escaped (`\\|` is a pipe inside a cell)."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


_NUMBER = re.compile(r"^[-+]?[\d.,]*\d(\s?[kMG%x]|\s?KiB|\s?ms)?$")     # right-aligned: a figure (30.5, 77.4k, 12%)


def _td(cell: str) -> str:
    """A table cell: tinted by its leading status word; its links' titles (the causes' names) as its tooltip."""
    st = _cell_status(cell)
    tips = [t for t in re.findall(r'\]\(#[\w\-]+ "([^"]*)"\)', cell)]
    cls = f"st-{st}" if st else ("n" if _NUMBER.match(cell) else "")
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{html.escape("; ".join(tips))}"' if tips else "")
    return f"<td{attrs}>{_inline(cell)}</td>"


def _image(alt: str, src: str, base: Path) -> str:
    path = (base / src) if not Path(src).is_absolute() else Path(src)
    if not path.exists():
        return f"<p><em>missing plot {html.escape(src)}</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


def to_html(markdown: str, base: Path, title: str = "report") -> str:
    lines = markdown.splitlines()
    out = [f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
           f"<title>{html.escape(title)}</title><style>{CSS}{_status_css()}</style></head><body>"]
    i = 0
    para: list[str] = []
    ids: dict[str, int] = {}

    def heading_id(text: str) -> str:
        """GitHub's rule: the slug, then -1, -2, ... for repeats."""
        base = slug(text)
        n = ids.get(base, 0)
        ids[base] = n + 1
        return base if n == 0 else f"{base}-{n}"

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            flush()
            n = len(m.group(1))
            out.append(f'<h{n} id="{html.escape(heading_id(m.group(2)))}">{_inline(m.group(2))}</h{n}>')
        elif _FOLD.match(line):
            flush()
            out.append(_fold(line))
        elif line.startswith("```"):
            flush()
            i += 1
            code = []
            while i < len(lines) and not lines[i].startswith("```"):
                code.append(lines[i])
                i += 1
            out.append(f"<pre>{html.escape(chr(10).join(code))}</pre>")
        elif _IMG.match(line.strip()):
            flush()
            figs = []
            while i < len(lines) and (m := _IMG.match(lines[i].strip())):
                figs.append(_image(m.group("alt"), m.group("src"), base))
                i += 1
            out.append(f'<div class="row">{"".join(figs)}</div>' if len(figs) > 1 else figs[0])
            continue
        elif line.lstrip().startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            out.append('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
                       + "</tr></thead><tbody>" + "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in body)
                       + "</tbody></table></div>")
            continue
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        else:
            para.append(line.strip())
        i += 1
    flush()
    out.append(SORT + "</body></html>")
    return "\n".join(out) + "\n"
