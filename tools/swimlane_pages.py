"""tools/swimlane_pages.py: draws a swimlane (tools/swimlane.py's Lane) for a reader.

Three forms of the same table, one column per thread and one row per step: text for a terminal
(tools/verify prints it when a model fails), Markdown for a forge and a standalone HTML page (no
external assets), which tools/traces writes to docs/traces. Python 3 standard library only.
"""
from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path

import suite
from swimlane import Lane, Loc, Step
from tables import md_cell

# ---------------------------------------------------------------------------------------------
# Rendering: shared facts


def title(lane: Lane) -> str:
    who = f"mutant {lane.mutant}" if lane.mutant else f"model {lane.meta.get('model', '?')}"
    return f"{who}: {lane.kind}"


def facts(lane: Lane) -> list[tuple[str, str]]:
    """(label, text) lines of the page header; text may hold `code` spans."""
    m = lane.meta
    out = []
    if lane.mutant:
        if lane.point:
            out.append(("mutation point", f"`seam::mutant(\"{lane.mutant}\")` at {lane.point[0]}:{lane.point[1]}"))
    client = m.get("binary", "").removeprefix("model_")  # model_<client> runs its models and mutants
    out.append(("caught by model" if lane.mutant else "model",
                f"`{m.get('model', '?')}` in models/{client}_model.cpp ({lane.threads} threads, "
                f"{suite.search_label(m.get('search', '?'))} search)"))
    out.append(("property", m.get("property", "?")))
    found = f", found at iteration {lane.iteration:,} of the search" if lane.iteration else ""
    out.append(("failure", f"**{lane.kind}** ({lane.detail}){found}"))
    if lane.asleep:
        out.append(("asleep at the end", ", ".join(f"thread {t} in futex_wait at {loc.short}"
                                                   for t, loc in sorted(lane.asleep.items()))))
    return out


def initial_state(lane: Lane) -> str:
    return ", ".join(f"{o.name} = {o.initial}" for o in lane.objects if o.initial is not None)


def columns(lane: Lane) -> list[str]:
    cols = [f"thread {t}" for t in range(lane.threads)]
    if any(s.phase == "after" for s in lane.steps):
        cols.append("after()")
    return cols


def placement(lane: Lane, s: Step) -> dict[int, str | None]:
    """Column -> what goes there: None for the step's own operation, or a text of its own."""
    if s.cells:
        return dict(s.cells)
    return {lane.threads if s.phase == "after" else (s.thread or 0): None}


def plain(ops) -> str:
    return "".join(t for _, t in ops)


# ---------------------------------------------------------------------------------------------
# Text (a terminal)


def render_text(lane: Lane, width: int = 120, max_steps: int = 60) -> str:
    cols = columns(lane)
    state = [o.name for o in lane.atomics][:3]
    state_w = [max(len(n), 10) for n in state]
    num_w = max(4, len(str(len(lane.steps))) + 2)
    fixed = num_w + sum(w + 3 for w in state_w) + 3 * len(cols)
    col_w = max(24, (width - fixed) // max(1, len(cols)))
    out = [title(lane)]
    if lane.mutant:
        out += textwrap.wrap(f"what it breaks: {lane.breaks or '(no row in models/mutants.tsv)'}", width,
                             subsequent_indent="    ")
    for label, text in facts(lane):
        out += textwrap.wrap(f"{label}: {text.replace('`', '').replace('**', '')}", width,
                             subsequent_indent="    ")
    if initial_state(lane):
        out.append(f"initial state: {initial_state(lane)}")
    out.append("")

    def row(num: str, cells: list[list[str]], vals: list[str]) -> None:
        height = max(len(c) for c in cells)
        for k in range(height):
            parts = [num.rjust(num_w - 1) if k == 0 else " " * (num_w - 1)]
            parts += [(c[k] if k < len(c) else "").ljust(col_w)[:col_w] for c in cells]
            parts += [(v if k == 0 else "").ljust(w)[:w] for v, w in zip(vals, state_w)]
            out.append(" | ".join(parts).rstrip())

    row("#", [[c] for c in cols], state)
    out.append("-+-".join("-" * w for w in [num_w - 1, *[col_w] * len(cols), *state_w]))
    steps = lane.steps
    if len(steps) > max_steps:
        out.append(f"   ... {len(steps) - max_steps} earlier steps (see the full trace) ...")
        steps = steps[-max_steps:]
    for s in steps:
        text = plain(s.ops) + (f" [{s.note}]" if s.note else "")
        cell = textwrap.wrap(text, col_w) or [""]
        if s.loc:
            cell.append(f"{'⚑ ' if s.mutated else ''}{s.loc.short} {s.loc.source}"[:col_w])
        where = placement(lane, s)
        cells = [[] if k not in where else cell if where[k] is None else textwrap.wrap(where[k], col_w)
                 for k in range(len(cols))]
        row(f"{'✖' if s.failing else ''}{s.n}", cells, [s.state.get(n, "") for n in state])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Markdown (a forge)


STAMP = re.compile(r"^<!-- lockstep-trace (.*) -->$")


def stamp(lane: Lane) -> str:
    """The first line of a Markdown trace: what tools/verify --check-traces compares against."""
    return f"<!-- lockstep-trace mutant={lane.mutant or '-'} model={lane.meta.get('model', '?')} kind={lane.kind} -->"


def read_stamp(page: Path) -> dict[str, str] | None:
    """{mutant, model, kind} from a Markdown trace written by render_md, or None."""
    first = page.read_text(errors="replace").split("\n", 1)[0] if page.is_file() else ""
    m = STAMP.match(first)
    return suite.fields("x " + m[1])[1] if m else None


def md_inline(ops) -> str:
    fmt = {"verb": "**{}**", "obj": "`{}`", "val": "{}", "order": "*{}*", "outcome": "{}", "warn": "**{}**",
           "text": "{}"}
    out = []
    for style, t in ops:  # emphasis must hug its text: "** x**" is not bold in CommonMark
        core = t.strip()
        lead, trail = t[: len(t) - len(t.lstrip())], t[len(t.rstrip()):]
        out.append(lead + fmt[style].format(core if style == "obj" else md_text(core)) + trail if core else t)
    return "".join(out)


def md_text(t: str) -> str:
    return t.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("_", "\\_")


def md_code(t: str) -> str:
    tick = "``" if "`" in t else "`"
    pad = " " if "`" in t else ""
    return f"{tick}{pad}{t}{pad}{tick}"


def source_link(loc: Loc, depth: str) -> str:
    return f"[{loc.short}]({depth}{loc.path}#L{loc.line})"


def render_md(lane: Lane, depth: str = "../../") -> str:
    """`depth` leads from the page's folder to the repository root (docs/traces/ -> ../../)."""
    cols = columns(lane)
    state = [o.name for o in lane.atomics][:3]
    out = [stamp(lane), "<!-- generated by tools/traces from a model run: do not edit by hand -->", "",
           f"# {title(lane)}", ""]
    if lane.breaks:
        out += [f"> {md_text(lane.breaks)}", ""]
    for label, text in facts(lane):
        if label == "mutation point" and lane.point:
            text = (f"`seam::mutant(\"{lane.mutant}\")` at "
                    f"[{lane.point[0]}:{lane.point[1]}]({depth}{lane.point[0]}#L{lane.point[1]})")
        out.append(f"- **{label}**: {text}")
    out += ["", "Objects (named after the source that touches them):", ""]
    for o in lane.objects:
        init = f", initially {o.initial}" if o.initial is not None else ""
        out.append(f"- `{o.name}`: {'atomic' if o.atomic else 'plain (rl::var)'}{init}; "
                   f"first touched at {source_link(o.first, depth)}")
    if lane.truncated:
        out += ["", "**The report was truncated: the history below is incomplete.**"]
    out += ["", f"Each row is one step of the interleaving, in the column of the thread that took it; "
                f"{'the ' + ', '.join('`' + s + '`' for s in state) + ' column shows the value a step wrote; ' if state else ''}"
                "✖ marks the failing step. How to read it: [docs/README.md](../README.md#reading-a-swimlane).", ""]
    head = ["step", *cols, *[f"`{n}`" for n in state]]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in lane.steps:
        cell = md_inline(s.ops)
        if s.note:
            cell += f"<br>*{md_text(s.note)}*"
        if s.loc:
            cell += f"<br>{source_link(s.loc, depth)} {md_text(s.loc.fn)}"
            if s.mutated:
                cell += " ⚑ **the mutated line**"
            if s.loc.source:
                cell += f"<br>{md_code(s.loc.source)}"
        where = placement(lane, s)
        cells = ["" if k not in where else cell if where[k] is None else f"**{md_text(where[k])}**"
                 for k in range(len(cols))]
        num = f"**✖ {s.n}**" if s.failing else str(s.n)
        vals = [f"`{s.state[n]}`" if n in s.state else "" for n in state]
        out.append("| " + " | ".join(md_cell(x) for x in [num, *cells, *vals]) + " |")
    out += ["", f"Standalone page: [{Path(lane.mutant or 'trace').name}.html]({lane.mutant or 'trace'}.html). "
                "Regenerate with `tools/traces`.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# HTML (a standalone page, no external assets)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h1 .kind { color: #b3261e; }
.breaks { font-size: 1.05em; border-left: 4px solid #b3261e; padding: .2em .8em; margin: .6em 0 1em; background: #fdf3f2; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .15em 1em; margin: 0 0 1em; }
dl.facts dt { font-weight: 600; color: #555; } dl.facts dd { margin: 0; }
code, .src, .val, .obj, td.state { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
.objects { margin: 0 0 1em; padding-left: 1.2em; } .help { color: #555; max-width: 60em; }
table.lane { border-collapse: separate; border-spacing: 0; width: 100%; table-layout: fixed; }
table.lane th { position: sticky; top: 0; background: #f4f4f6; border-bottom: 2px solid #ccc; padding: .4em; text-align: left; z-index: 1; }
table.lane td { border-bottom: 1px solid #eee; padding: .3em .45em; vertical-align: top; overflow-wrap: anywhere; }
table.lane col.n { width: 3.5em; } table.lane col.state { width: 9em; }
table.lane td.n { color: #888; text-align: right; } table.lane td.state { color: #6a3d9a; }
.op { border-left: 4px solid #ccc; padding-left: .45em; }
.op.read { border-color: #3b82c4; } .op.write { border-color: #e07b00; } .op.rmw { border-color: #c4453b; }
.op.var { border-color: #2e8b57; } .op.futex { border-color: #7b4bb3; background: #f7f2fc; }
.op.yield, .op.done { border-color: #ddd; color: #888; } .op.fail { border-color: #b3261e; }
.verb, .outcome { font-weight: 600; } .mutated { color: #b3261e; font-weight: 600; } .obj { font-family: ui-monospace, monospace; color: #0b5394; }
.order { font-style: italic; color: #555; } .warn { color: #b3261e; font-weight: 600; }
.loc { font-size: 12px; color: #777; } .loc a { color: #777; }
.src { display: block; color: #333; background: #f6f8fa; padding: .1em .3em; margin-top: .15em; white-space: pre-wrap; }
.note { display: block; color: #b3261e; font-style: italic; }
tr.failing td { background: #fdecea; } tr.failing td.n { color: #b3261e; font-weight: 700; }
"""


def html_ops(ops) -> str:
    return "".join(f'<span class="{s}">{html.escape(t)}</span>' if s != "text" else html.escape(t) for s, t in ops)


def html_code(text: str) -> str:
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m[1]}</code>",
                  re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False)))


def render_html(lane: Lane, depth: str = "../../") -> str:
    cols = columns(lane)
    state = [o.name for o in lane.atomics][:3]
    e = html.escape
    p = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         f"<title>{e(title(lane))}</title><style>{CSS}</style></head><body>",
         f"<h1>{e(lane.mutant or lane.meta.get('model', ''))}: <span class=\"kind\">{e(lane.kind)}</span></h1>"]
    if lane.breaks:
        p.append(f'<div class="breaks">{e(lane.breaks)}</div>')
    p.append('<dl class="facts">')
    for label, text in facts(lane):
        body = html_code(text)
        if label == "mutation point" and lane.point:
            body = (f"<code>seam::mutant(\"{e(lane.mutant)}\")</code> at <a href=\"{depth}{lane.point[0]}\">"
                    f"{e(lane.point[0])}:{lane.point[1]}</a>")
        p.append(f"<dt>{e(label)}</dt><dd>{body}</dd>")
    p.append('<dt>failing step</dt><dd><a href="#fail">jump to it</a></dd></dl>')
    p.append('<ul class="objects">')
    for o in lane.objects:
        init = f", initially <code>{e(o.initial)}</code>" if o.initial is not None else ""
        p.append(f"<li><code>{e(o.name)}</code>: {'atomic' if o.atomic else 'plain (rl::var)'}{init}; first touched at "
                 f"<a href=\"{depth}{e(o.first.path)}\" title=\"{e(o.first.path)}:{o.first.line}\">{e(o.first.short)}</a>"
                 f" <code>{e(o.first.source)}</code></li>")
    p.append("</ul>")
    if lane.truncated:
        p.append('<p class="warn">The report was truncated: the history below is incomplete.</p>')
    p.append('<p class="help">Read down: each row is one step of the interleaving the model checker chose, in the '
             "column of the thread that took it: the operation (with its memory order and the value read or "
             "written), the source line, and that line's text. The right-hand column"
             f"{'s show' if len(state) > 1 else ' shows'} the value each step wrote to the atomic word. "
             "A futex_wait row says what the word was checked against and whether the thread slept. "
             "The failing step is red.</p>")
    widths = "".join('<col class="state">' for _ in state)
    p.append(f'<table class="lane"><colgroup><col class="n">{"<col>" * len(cols)}{widths}</colgroup><thead><tr>'
             f'<th class="n">#</th>' + "".join(f"<th>{e(c)}</th>" for c in cols)
             + "".join(f'<th class="state">{e(n)}</th>' for n in state) + "</tr></thead><tbody>")
    for s in lane.steps:
        cell = f'<div class="op {s.category}">{html_ops(s.ops)}'
        if s.note:
            cell += f'<span class="note">{e(s.note)}</span>'
        if s.loc:
            cell += (f'<div class="loc"><a href="{depth}{e(s.loc.path)}" title="{e(s.loc.path)}:{s.loc.line}">'
                     f"{e(s.loc.short)}</a> {e(s.loc.fn)}"
                     f"{' <span class=mutated>⚑ the mutated line</span>' if s.mutated else ''}</div>")
            if s.loc.source:
                cell += f'<span class="src">{e(s.loc.source)}</span>'
        cell += "</div>"
        where = placement(lane, s)
        tds = ["" if k not in where else cell if where[k] is None
               else f'<div class="op {"fail" if where[k].startswith("✖") else "done"}">{e(where[k])}</div>'
               for k in range(len(cols))]
        attrs = ' class="failing" id="fail"' if s.failing else ""
        p.append(f'<tr{attrs} title="Relacy step {s.raw}"><td class="n">{"✖ " if s.failing else ""}{s.n}</td>'
                 + "".join(f"<td>{x}</td>" for x in tds)
                 + "".join(f'<td class="state">{e(s.state.get(n, ""))}</td>' for n in state) + "</tr>")
    p.append("</tbody></table>")
    command = lane.meta.get("binary", "") + (f" --mutant {lane.mutant}" if lane.mutant else "")
    p.append(f'<p class="help">Generated by <code>tools/traces</code> from <code>{e(command)}</code>. '
             f'Markdown version: <a href="{e(lane.mutant or "trace")}.md">{e(lane.mutant or "trace")}.md</a>.</p>')
    p.append("</body></html>\n")
    return "\n".join(p)


RENDER = {"text": render_text, "md": render_md, "html": render_html}
