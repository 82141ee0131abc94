#!/usr/bin/env python3
"""tools/swimlane.py: turns a model's failure trace into a swimlane: one column per thread.

A model binary run with --trace-dir writes Relacy's report (see models/harness/harness.hpp): a
few "# key: value" lines, then the failure kind and the execution history, one line per step:

    [17] 0: <0x5595c5b5e090> atomic store, value=0, (prev value=-2147483647), order=release,
            in release_contended, /work/main/primitives/include/lockstep/mutex.hpp(229)

This module reads that, names the objects instead of printing addresses (the name the source
line uses for it: `word_`, `counter`), drops Relacy's bookkeeping (CTOR/BEFORE markers, the
per-thread repeat of the history), folds the futex model's steps into one futex_wait/futex_wake
step each, and marks the failing step: a Lane. tools/swimlane_pages.py draws a Lane as text (for
a terminal), Markdown (a table readable on a forge) or a standalone HTML page. Python 3 standard
library only.

    tools/swimlane.py TRACE [--format text|md|html] [--output FILE] [--width N]
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description="Turn a model failure trace (--trace-dir output) into a swimlane.")
    ap.add_argument("trace", type=Path)
    ap.add_argument("--format", choices=["text", "md", "html"], default="text")
    ap.add_argument("--output", type=Path, help="write here instead of stdout")
    ap.add_argument("--width", type=int, default=0, help="text format: columns (default: the terminal's)")
    a = ap.parse_args()
    if not a.trace.is_file():
        ap.error(f"no such trace file: {a.trace}")
    try:
        lane = load(a.trace)
    except ValueError as err:
        ap.error(f"{a.trace}: {err}")
    import swimlane_pages as pages  # it imports this module: load it only when drawing

    if a.format == "text":
        out = pages.render_text(lane, a.width or shutil.get_terminal_size((120, 40)).columns)
    else:
        out = pages.RENDER[a.format](lane)
    if a.output:
        a.output.write_text(out)
    else:
        sys.stdout.reconfigure(errors="replace")
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
