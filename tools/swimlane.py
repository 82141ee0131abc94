#!/usr/bin/env python3
"""tools/swimlane.py: turns a model's failure trace into a swimlane: one column per thread.

A model binary run with --trace-dir writes Relacy's report (see models/harness/harness.hpp): a
few "# key: value" lines, then the failure kind and the execution history, one line per step:

    [17] 0: <0x5595c5b5e090> atomic store, value=0, (prev value=-2147483647), order=release,
            in release_contended, /work/main/primitives/include/lockstep/mutex.hpp(229)

This module reads that, names the objects instead of printing addresses (the name the source
line uses for it: `word_`, `counter`), drops Relacy's bookkeeping (CTOR/BEFORE markers, the
per-thread repeat of the history), folds the futex model's steps into one futex_wait/futex_wake
step each, marks the failing step, and renders the result as text (for a terminal), Markdown (a
table readable on a forge) or a standalone HTML page. Python 3 standard library only.

    tools/swimlane.py TRACE [--format text|md|html] [--output FILE] [--width N]
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from tables import md_cell  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Reading Relacy's report

HISTORY = re.compile(r"^\[(\d+)\] (\d+): (.*), in (.*?), (.+)\((\d+)\)$")
ATOMIC_LOAD = re.compile(r"^<(0x[0-9a-f]+)> atomic load, value=(.*?)( \[NOT CURRENT\])?, order=(\w+)$")
ATOMIC_STORE = re.compile(r"^<(0x[0-9a-f]+)> atomic store, value=(.*?), \(prev value=(.*?)\), order=(\w+)$")
CAS = re.compile(r"^<(0x[0-9a-f]+)> CAS (succ|fail) (\[SPURIOUSLY\] )?(\[ABA\] )?orig=(.*?), cmp=(.*?), "
                 r"xchg=(.*?), order=(\w+)$")
RMW = re.compile(r"^<(0x[0-9a-f]+)> (exchange|fetch_\w+) , prev=(.*?), arg=(.*?), new=(.*?), order=(\w+)$")
VAR = re.compile(r"^<(0x[0-9a-f]+)> (load|store), value=(.*)$")
FUTEX = re.compile(r"^<(0x[0-9a-f]+)> futex\((\w+), (-?\d+), (\d)\) = (\w+)$")
BLOCK = re.compile(r"^blocking current thread( \[timed\])?$")
UNBLOCK = re.compile(r"^unblocking thread (\d+)$")
YIELD = re.compile(r"^yield\((\d+)\)$")
FENCE = re.compile(r"^(compiler )?(\w+) fence$")
MARKER = re.compile(r"^\[([A-Z ]+)\]$")


@dataclass
class Raw:
    index: int
    thread: int
    text: str
    fn: str
    path: str
    line: int


@dataclass
class Trace:
    meta: dict[str, str]
    kind: str
    detail: str
    iteration: int | None
    events: list[Raw]
    truncated: bool


def parse(text: str) -> Trace:
    meta, events = {}, []
    kind, detail, iteration = "", "", None
    in_history = False
    for line in text.splitlines():
        if line.startswith("# ") and ":" in line and not events and not in_history:
            k, _, v = line[2:].partition(":")
            meta[k.strip()] = v.strip()
        elif line.startswith("execution history"):
            in_history = True
        elif in_history:
            m = HISTORY.match(line)
            if not m:
                if events:
                    break  # end of the history; what follows repeats it per thread
                continue
            events.append(Raw(int(m[1]), int(m[2]), m[3], m[4], m[5], int(m[6])))
        elif line.startswith("iteration: "):
            iteration = int(line.split(":")[1])
        elif not kind and meta.get("result") and line.startswith(meta["result"]):
            kind, detail = meta["result"], line[len(meta["result"]):].strip()
            if detail.startswith("(") and detail.endswith(")"):
                detail = detail[1:-1]
    if not meta.get("result"):
        raise ValueError("not a model trace: no '# result:' line (see models/harness/harness.hpp)")
    return Trace(meta, kind or meta["result"], detail, iteration, events, "[report truncated]" in text)


# ---------------------------------------------------------------------------------------------
# Source locations


@dataclass
class Loc:
    path: str  # relative to the repository when it is in it
    line: int
    fn: str
    source: str  # the text of that line, stripped; "" if unknown

    @property
    def short(self) -> str:
        return f"{Path(self.path).name}:{self.line}"

    @property
    def internal(self) -> bool:
        """A line inside Relacy itself (its scheduler reports deadlocks from there)."""
        return "relacy/" in self.path


class Sources:
    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, list[str]] = {}

    def relative(self, path: str) -> str:
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root))
        except ValueError:
            pass
        parts = p.parts  # a trace written in another checkout: the longest suffix that exists here
        for i in range(1, len(parts)):
            if (self.root / Path(*parts[i:])).exists():
                return str(Path(*parts[i:]))
        if "relacy" in parts:
            return str(Path(*parts[parts.index("relacy"):]))
        return path

    def loc(self, raw: Raw) -> Loc:
        rel = self.relative(raw.path)
        if rel not in self.cache:
            f = self.root / rel
            self.cache[rel] = f.read_text(errors="replace").splitlines() if f.is_file() else []
        lines = self.cache[rel]
        src = lines[raw.line - 1].strip() if 0 < raw.line <= len(lines) else ""
        return Loc(rel, raw.line, raw.fn, src)


# ---------------------------------------------------------------------------------------------
# Naming objects: the identifier the source lines that touch an address use for it

OPS = r"(?:load|store|exchange|compare_exchange_strong|compare_exchange_weak|fetch_\w+|read|write)"
NAME_PATTERNS = [
    re.compile(r"([A-Za-z_]\w*(?:\[[^\]]*\])?)(?:\(\$\))?\s*(?:\.|->)\s*" + OPS + r"\s*\("),  # word_.load(
    re.compile(r"futex_\w+\s*\(\s*&?([A-Za-z_][\w.>-]*)"),  # futex_wait(word_, ...
    re.compile(r"([A-Za-z_]\w*(?:\[[^\]]*\])?)\s*\(\s*\$\s*\)"),  # counter($)  (a Relacy rl::var)
    re.compile(r"(?:^|[:,]\s*)([A-Za-z_]\w*_)\s*[({]"),  # : word_(0)  (a member initialiser)
]


@dataclass
class Obj:
    addr: str
    name: str
    atomic: bool
    first: Loc
    initial: str | None = None


def name_objects(touches: dict[str, list[Loc]], atomic: set[str]) -> dict[str, Obj]:
    objs = {}
    for addr, locs in touches.items():
        votes: Counter[str] = Counter()
        for loc in locs:
            found = [m for p in NAME_PATTERNS for m in p.findall(loc.source)]
            for name in found:
                votes[name] += 1.0 / len(found)
        name = votes.most_common(1)[0][0] if votes else f"obj@{locs[0].short}"
        objs[addr] = Obj(addr, name, addr in atomic, locs[0])
    # Elements of one array (taken[i], taken[id]) are numbered by address; other clashes get the
    # file they were first touched in, then a counter.
    by_base: dict[str, list[Obj]] = {}
    for o in objs.values():
        by_base.setdefault(re.sub(r"\[.*\]$", "", o.name), []).append(o)
    for base, group in by_base.items():
        if len(group) < 2:
            continue
        if all("[" in o.name for o in group):
            for i, o in enumerate(sorted(group, key=lambda o: int(o.addr, 16))):
                o.name = f"{base}[{i}]"
            continue
        files = {o.first.path for o in group}
        for i, o in enumerate(sorted(group, key=lambda o: int(o.addr, 16))):
            o.name = f"{o.name}@{Path(o.first.path).name}" if len(files) == len(group) else f"{o.name}#{i + 1}"
    return objs


def value(v: str) -> str:
    """Futex words are 32-bit unsigned, stored as int in the model: show large ones in hex."""
    try:
        n = int(v)
    except ValueError:
        return v
    if -(2**31) <= n < 2**32 and abs(n) >= 2**16:
        return f"0x{n & 0xFFFFFFFF:08x}"
    return str(n)


# ---------------------------------------------------------------------------------------------
# The swimlane


@dataclass
class Step:
    """One row: what one thread did at one point of the interleaving."""

    thread: int | None  # None: a row about every thread (a deadlock, a livelock)
    ops: list[tuple[str, str]]  # (style, text): styles verb, obj, val, order, outcome, warn, text
    category: str  # read, write, rmw, var, futex, yield, done, fail, other
    loc: Loc | None
    raw: int  # Relacy's step number
    phase: str = "run"  # "run", or "after" (the suite's after(), once every thread finished)
    failing: bool = False
    mutated: bool = False  # the step runs the line the mutant changes
    note: str = ""
    state: dict[str, str] = field(default_factory=dict)  # atomic object -> value after this step
    cells: dict[int, str] = field(default_factory=dict)  # a row about every thread: column -> text
    n: int = 0  # our step number, 1-based

    @property
    def text(self) -> str:
        return "".join(t for _, t in self.ops)


@dataclass
class Lane:
    meta: dict[str, str]
    kind: str
    detail: str
    iteration: int | None
    threads: int
    objects: list[Obj]
    steps: list[Step]
    asleep: dict[int, Loc]  # threads asleep in futex_wait when the trace ends
    truncated: bool
    mutant: str = ""
    breaks: str = ""  # what the mutant breaks, from models/mutants.tsv
    point: tuple[str, int] | None = None  # the mutation point: (file, line)

    @property
    def atomics(self) -> list[Obj]:
        return [o for o in self.objects if o.atomic]

    @property
    def failing(self) -> Step | None:
        return next((s for s in self.steps if s.failing), None)


def build(trace: Trace, root: Path = suite.ROOT) -> Lane:
    src = Sources(root)
    events = trace.events
    locs = [src.loc(e) for e in events]

    # Which addresses are atomics (futex words included) and where each is touched.
    touches: dict[str, list[Loc]] = {}
    atomic: set[str] = set()
    for e, loc in zip(events, locs):
        m = re.match(r"^<(0x[0-9a-f]+)> (\w+)", e.text)
        if m:
            touches.setdefault(m[1], []).append(loc)
            if m[2] != "load" and m[2] != "store":
                atomic.add(m[1])
    objs = name_objects(touches, atomic)

    def obj(addr: str) -> str:
        return objs[addr].name if addr in objs else addr

    # The next event of the same thread, to fold the futex model's steps together.
    next_same: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i in range(len(events) - 1, -1, -1):
        next_same[i] = last.get(events[i].thread)
        last[events[i].thread] = i

    steps: list[Step] = []
    latest: dict[str, str] = {}  # atomic -> its newest value in modification order
    consumed: set[int] = set()
    phase = "run"
    setup = True
    sleeping: dict[int, Loc] = {}
    var_access: list[tuple[int, str, bool, int]] = []  # (step index, addr, is_write, thread)
    threads = int(trace.meta.get("threads", 0)) or (max((e.thread for e in events), default=0) + 1)

    def add(e: Raw, loc: Loc | None, category: str, ops, **kw) -> Step:
        s = Step(e.thread, ops, category, loc, e.index, phase, **kw)
        steps.append(s)
        return s

    for i, (e, loc) in enumerate(zip(events, locs)):
        if i in consumed:
            continue
        t = e.text
        marker = MARKER.match(t)
        if marker:
            what = marker[1]
            if what in ("CTOR BEGIN", "BEFORE BEGIN"):
                setup = True
            elif what == "BEFORE END":
                setup = False
            elif what in ("AFTER BEGIN", "DTOR BEGIN"):
                phase = "after"
            elif what == "THREAD FINISHED":
                add(e, None, "done", [("text", "thread finished")])
            continue
        if setup:  # the constructor and before(): the initial state, not a thread's step
            m = ATOMIC_STORE.match(t) or VAR.match(t)
            if m and m[1] in objs:
                v = value(m[2] if ATOMIC_STORE.match(t) else m[3])
                objs[m[1]].initial = v
                if objs[m[1]].atomic:
                    latest[m[1]] = v
            continue

        if m := ATOMIC_LOAD.match(t):
            addr, v, stale, order = m[1], value(m[2]), bool(m[3]), m[4]
            j = next_same[i]
            nxt = events[j].text if j is not None else ""
            futex_check = j is not None and events[j].line == e.line and (BLOCK.match(nxt) or FUTEX.match(nxt))
            staleness = [("warn", f" (stale: the newest value is {latest.get(addr, '?')})")] if stale else []
            if futex_check and BLOCK.match(nxt):
                consumed.add(j)
                timed = " (with a timeout)" if "[timed]" in nxt else ""
                sleeping[e.thread] = loc
                add(e, loc, "futex", [("verb", "futex_wait"), ("text", " "), ("obj", obj(addr)),
                                      ("text", f" expects {v}: word is {v}, sleeps{timed}"), *staleness])
            elif futex_check:
                consumed.add(j)
                f = FUTEX.match(nxt)
                add(e, loc, "futex", [("verb", "futex_wait"), ("text", " "), ("obj", obj(addr)),
                                      ("text", f" expects {value(f[3])}: word is {v}, returns at once "),
                                      ("val", f[5]), *staleness])
            else:
                add(e, loc, "read", [("verb", "load"), ("text", " "), ("obj", obj(addr)), ("text", " ("),
                                     ("order", order), ("text", ") → "), ("val", v), *staleness])
        elif m := ATOMIC_STORE.match(t):
            addr, v = m[1], value(m[2])
            latest[addr] = v
            add(e, loc, "write", [("verb", "store"), ("text", " "), ("obj", obj(addr)), ("text", " ("), ("order", m[4]),
                                  ("text", ") ← "), ("val", v), ("text", f", was {value(m[3])}")],
                state={obj(addr): v})
        elif m := CAS.match(t):
            addr, ok, spurious, aba = m[1], m[2] == "succ", bool(m[3]), bool(m[4])
            orig, cmp, xchg = value(m[5]), value(m[6]), value(m[7])
            ops = [("verb", "CAS"), ("text", " "), ("obj", obj(addr)), ("text", " ("), ("order", m[8]),
                   ("text", f") {cmp} → {xchg}: ")]
            if ok:
                latest[addr] = xchg
                ops.append(("outcome", "succeeds"))
            else:
                ops += [("outcome", "fails spuriously" if spurious else "fails"), ("text", f", word is {orig}")]
            if aba:
                ops.append(("text", " (ABA: the word left this value and came back)"))
            add(e, loc, "rmw", ops, state={obj(addr): xchg} if ok else {})
        elif m := RMW.match(t):
            addr, new = m[1], value(m[5])
            latest[addr] = new
            add(e, loc, "rmw", [("verb", m[2]), ("text", " "), ("obj", obj(addr)), ("text", " ("), ("order", m[6]),
                                ("text", f") {value(m[4])}: "), ("val", f"{value(m[3])} → {new}")],
                state={obj(addr): new})
        elif m := VAR.match(t):
            write = m[2] == "store"
            var_access.append((len(steps), m[1], write, e.thread))
            add(e, loc, "var", [("verb", "write" if write else "read"), ("text", " "), ("obj", obj(m[1])),
                                ("text", " ← " if write else " → "), ("val", value(m[3]))])
        elif m := FUTEX.match(t):  # a futex_wait returning after it slept
            sleeping.pop(e.thread, None)
            meaning = {"UNKNOWN": "0: woken", "ETIMEDOUT": "ETIMEDOUT: timed out",
                       "EINTR": "EINTR: spurious wake-up", "EWOULDBLOCK": "EAGAIN: the word changed"}
            add(e, loc, "futex", [("verb", "futex_wait"), ("text", " "), ("obj", obj(m[1])), ("text", " returns "),
                                  ("outcome", meaning.get(m[5], m[5]))])
        elif UNBLOCK.match(t):  # futex_wake: Relacy logs each thread it wakes, then the call
            woken, j = [], i
            while j is not None and UNBLOCK.match(events[j].text):
                woken.append(UNBLOCK.match(events[j].text)[1])
                consumed.add(j)
                j = next_same[j]
            f = FUTEX.match(events[j].text) if j is not None else None
            if f and f[2] == "FUTEX_WAKE":
                consumed.add(j)
                loc = locs[j]
            who = ", ".join(f"thread {w}" for w in woken)
            add(e, loc, "futex", [("verb", "futex_wake"), ("text", " "), ("obj", obj(f[1]) if f else "?"),
                                  ("text", f" {f[3] if f else ''}: "), ("outcome", f"wakes {who}" if who else "wakes nobody")])
        elif BLOCK.match(t):
            sleeping[e.thread] = loc
            add(e, loc, "futex", [("verb", "sleeps"), ("text", " (timed)" if "[timed]" in t else "")])
        elif YIELD.match(t):
            add(e, loc, "yield", [("verb", "yield"), ("text", "  (spin_pause)" if "spin" in loc.fn else "")])
        elif m := FENCE.match(t):
            add(e, loc, "rmw", [("verb", "fence"), ("text", " ("), ("order", m[2]), ("text", ")")])
        elif t.startswith(trace.kind):
            fail = Step(e.thread, [("warn", f"✖ {trace.kind}"), ("text", f": {trace.detail}" if trace.detail else "")],
                        "fail", loc, e.index, phase, failing=True)
            prev = steps[-1] if steps else None
            if trace.kind == "DEADLOCK":  # about every thread: its cells are filled in below
                fail.thread, fail.loc = None, None
            elif loc.internal:  # reported from inside Relacy's scheduler: no source line of ours
                fail.loc = None
            elif prev and prev.thread == e.thread and prev.loc and prev.loc.line == e.line and prev.category == "var":
                # The access Relacy flags: mark it instead of adding a row of its own.
                prev.failing = True
                prev.ops += [("text", "  "), *fail.ops]
                fail = None
            if fail:
                steps.append(fail)
            target = prev if fail is None else fail
            if trace.kind == "DATA RACE":
                race_note(var_access, steps, target)
        else:  # an event this converter does not know: kept, with addresses named
            add(e, loc, "other", [("text", re.sub(r"<(0x[0-9a-f]+)>", lambda m: obj(m[1]), t))])

    for n, s in enumerate(steps, 1):
        s.n = n
        if s.failing and s.thread is None:
            s.cells = deadlock_cells(threads, sleeping, {x.thread for x in steps if x.category == "done"})
    return Lane(trace.meta, trace.kind, trace.detail, trace.iteration, threads,
                sorted(objs.values(), key=lambda o: (not o.atomic, o.first.path, o.first.line)), steps, sleeping,
                trace.truncated)


def deadlock_cells(threads: int, asleep: dict[int, Loc], done: set[int]) -> dict[int, str]:
    """A deadlock's row: what each thread is left doing."""
    out = {}
    for t in range(threads):
        if t in asleep:
            out[t] = f"✖ DEADLOCK: asleep forever in futex_wait ({asleep[t].short}); nobody will wake it"
        elif t in done:
            out[t] = "(finished)"
        else:
            out[t] = "✖ DEADLOCK: blocked"
    return out


def race_note(var_access, steps: list[Step], racing: Step) -> None:
    """Notes on both sides of a data race: the flagged access, and the latest conflicting access
    to the same variable by another thread (the one it is not ordered with)."""
    mine = next((a for a in reversed(var_access) if steps[a[0]] is racing), None)
    if mine is None:
        mine = next((a for a in reversed(var_access) if a[3] == racing.thread), None)
    if mine is None:
        return
    _, addr, write, thread = mine
    for idx, a, w, t in reversed(var_access):
        if a == addr and t != thread and (w or write) and idx < mine[0]:
            other = steps[idx]
            racing.note = (f"not ordered by happens-before with thread {t}'s {'write' if w else 'read'} at step "
                           f"{idx + 1} ({other.loc.short if other.loc else '?'})")
            other.note = f"the other side of the data race at step {steps.index(racing) + 1}"
            return


def load(trace_path: Path, root: Path = suite.ROOT) -> Lane:
    lane = build(parse(trace_path.read_text(errors="replace")), root)
    lane.mutant = lane.meta.get("mutant", "none")
    if lane.mutant == "none":
        lane.mutant = ""
    if lane.mutant:
        lane.breaks = suite.mutant_registry().get(lane.mutant, ("", ""))[1]
        lane.point = suite.mutation_point(lane.mutant)
    if lane.point:
        for s in lane.steps:
            s.mutated = bool(s.loc) and runs_line(s.loc, lane.point, root)
    return lane


def runs_line(loc: Loc, point: tuple[str, int], root: Path) -> bool:
    """Whether the statement that starts at `loc` reaches the line `point` (a call spread over
    several lines is logged at its first one, the mutated order may sit on its second)."""
    path, line = point
    if loc.path != path or not loc.line <= line <= loc.line + 3:
        return False
    lines = (root / path).read_text(errors="replace").splitlines()
    return not any(c in text for text in lines[loc.line - 1:line - 1] for c in ";{}")


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
    client = m.get("binary", "").removeprefix("model_").removeprefix("mutant_").split("_")[0]
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
    p.append(f'<p class="help">Generated by <code>tools/traces</code> from <code>{e(lane.meta.get("binary", ""))}</code>. '
             f'Markdown version: <a href="{e(lane.mutant or "trace")}.md">{e(lane.mutant or "trace")}.md</a>.</p>')
    p.append("</body></html>\n")
    return "\n".join(p)


RENDER = {"text": render_text, "md": render_md, "html": render_html}


def main() -> int:
    ap = argparse.ArgumentParser(description="Turn a model failure trace (--trace-dir output) into a swimlane.")
    ap.add_argument("trace", type=Path)
    ap.add_argument("--format", choices=sorted(RENDER), default="text")
    ap.add_argument("--output", type=Path, help="write here instead of stdout")
    ap.add_argument("--width", type=int, default=0, help="text format: columns (default: the terminal's)")
    a = ap.parse_args()
    if not a.trace.is_file():
        ap.error(f"no such trace file: {a.trace}")
    try:
        lane = load(a.trace)
    except ValueError as err:
        ap.error(f"{a.trace}: {err}")
    if a.format == "text":
        out = render_text(lane, a.width or shutil.get_terminal_size((120, 40)).columns)
    else:
        out = RENDER[a.format](lane)
    if a.output:
        a.output.write_text(out)
    else:
        sys.stdout.reconfigure(errors="replace")
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
