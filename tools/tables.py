"""tools/tables.py: tables for a terminal (aligned, one column wrapped to fit) and for Markdown.

Python 3 standard library only.
"""
from __future__ import annotations

import textwrap


def text_table(headers: list[str], rows: list[list[str]], width: int, wrap: int | None = None) -> str:
    """Aligned columns; column `wrap` (an index) is wrapped so the table fits in `width`."""
    cols = len(headers)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(cols)]
    gap = 2
    if wrap is not None:
        others = sum(w for i, w in enumerate(widths) if i != wrap) + gap * (cols - 1)
        widths[wrap] = max(len(headers[wrap]), min(widths[wrap], width - others), 20)
    lines = []

    def emit(cells: list[str]) -> None:
        wrapped = [textwrap.wrap(str(c), widths[i]) or [""] if i == wrap else [str(c)] for i, c in enumerate(cells)]
        for k in range(max(len(w) for w in wrapped)):
            parts = [(w[k] if k < len(w) else "").ljust(widths[i]) for i, w in enumerate(wrapped)]
            lines.append((" " * gap).join(parts).rstrip())

    emit(headers)
    lines.append((" " * gap).join("-" * w for w in widths))
    for r in rows:
        emit(r)
    return "\n".join(lines)


def md_cell(text: str) -> str:
    """A Markdown table cell: pipes escaped (also inside code spans, as GFM requires)."""
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
