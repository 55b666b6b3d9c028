"""A single self-contained HTML page: figures embedded as data URIs, no external URL, no script.

Build a :class:`Page` of :class:`Section` objects (paragraphs, notes, tables, figures) and call
:func:`render`. Everything is escaped; the result opens offline in any browser.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1d1d1f; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.8rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.subtitle { color: #555; margin-top: 0; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .6rem .9rem; margin: 1rem 0; }
.key { background: #eef6ff; border-left: 4px solid #2a7ae2; padding: .6rem .9rem; margin: 1rem 0; }
.scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
.tcap { color: #555; font-size: .85rem; margin: .8rem 0 0 0; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
code { background: #f3f3f3; padding: 0 .25rem; }
p, li, figcaption { overflow-wrap: anywhere; }
@media (max-width: 600px) {
  body { margin: 1rem auto; padding: 0 .6rem; font-size: 1rem; }
  h1 { font-size: 1.35rem; } h2 { font-size: 1.15rem; }
  table { font-size: .8rem; } th, td { padding: .2rem .35rem; }
  figure .scroll img { min-width: 640px; }  /* labels stay legible: scroll sideways to read */
}
"""


@dataclass
class Table:
    rows: Sequence[dict[str, Any]]
    caption: str = ""
    digits: int = 3


@dataclass
class Figure:
    path: Path
    caption: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Page:
    title: str
    subtitle: str = ""
    key_points: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def data_uri(path: str | Path) -> str:
    """``data:image/png;base64,...`` for a PNG/JPEG file."""
    path = Path(path)
    kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(table: Table) -> str:
    if not table.rows:
        return ""
    columns = list(table.rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c), table.digits)}</td>" for c in columns) + "</tr>"
        for row in table.rows
    )
    caption = f'<p class="tcap">{html.escape(table.caption)}</p>' if table.caption else ""
    # wide tables scroll inside their own box instead of widening (and cutting) a phone's page
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'{caption}<div class="scroll">{table_html}</div>'


def _figure(figure: Figure) -> str:
    alt = html.escape(figure.caption or figure.path.name)
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    image = f'<div class="scroll"><img src="{data_uri(figure.path)}" alt="{alt}"></div>'
    return f"<figure>{image}{caption}</figure>"


def render(page: Page) -> str:
    """The page as one HTML string (figures embedded; missing figure files are an error)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(page.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(page.title)}</h1>",
    ]
    if page.subtitle:
        parts.append(f'<p class="subtitle">{html.escape(page.subtitle)}</p>')
    if page.key_points:
        items = "".join(f"<li>{html.escape(point)}</li>" for point in page.key_points)
        parts.append(f'<div class="key"><strong>At a glance</strong><ul>{items}</ul></div>')
    for section in page.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f'<p class="note">{html.escape(note)}</p>' for note in section.notes)
        parts.extend(f"<p>{html.escape(text)}</p>" for text in section.paragraphs)
        parts.extend(_table(table) for table in section.tables)
        parts.extend(_figure(figure) for figure in section.figures)
    parts.append("</body></html>")
    return "\n".join(parts)
