"""bench/ipc_report.py: the IPC part of a tools/bench run (the Google Benchmark JSON of
lockstep_bench_ipc, bench/ipc_bench.cpp) as Markdown tables, chart panels, data and the issue-14
targets with their verdicts; bench/report.py puts them into bench/results/<date>-<host>.*.

Names are "<group>/<subject>/<variant>": ipc_throughput/<peer>/<size>, ipc_roundtrip/<peer>/
{active,asleep}, ipc_scaling/<peer>/<N> producers, ipc_idle/<peer>, ipc_priorities/<queue>,
ipc_memcpy/<size>. A figure a
peer cannot produce is a skipped benchmark whose message starts with "n/a: "; its cell says so.
Every figure is the median of the repetitions with the fastest and slowest as its spread; every
ratio compares two figures of the same run.
"""

import statistics

import gbench

SIZES = ["64 B", "1 KiB", "16 KiB"]
CHANNEL = "lockstep::ipc::channel"
IN_PLACE = "lockstep::ipc::channel in place"
MQ = "lockstep::ipc::message_queue"
FLOOR = "floor: busy-polled SPSC ring"


def load(path):
    """{(group, subject, variant): {"reps": [...], "na": why or None, "capacity": label}}"""
    runs = {}
    for key, b in gbench.iterations(path)[1]:
        r = runs.setdefault(key, {"reps": [], "na": None, "capacity": b.get("label", "")})
        if not b.get("error_occurred"):
            r["reps"].append(b)
        elif b.get("error_message", "").startswith("n/a: "):
            r["na"] = b["error_message"][5:]
        else:
            raise SystemExit(f"ipc_report: {b['name']} failed: {b.get('error_message')}")
    return runs


def stat(run, field):
    if run is None or run["na"] or not run["reps"]:
        return None
    vals = [r[field] for r in run["reps"]]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def subjects(runs, group):
    """Subjects of a group in run order: lockstep's first, then the floor, then the peers."""
    seen = []
    for g, s, _ in runs:
        if g == group and s not in seen:
            seen.append(s)
    return sorted(seen, key=lambda s: (not s.startswith("lockstep::"), s != FLOOR))


def ours(s):
    return s.startswith("lockstep::")


def name(s):
    return f"**{s}**" if ours(s) else s


# --- formatting ---------------------------------------------------------------------------------

def rate(v):
    return f"{v / 1e6:.3g} M/s" if v >= 1e5 else f"{v / 1e3:.3g} k/s"


def gbps(v):
    return f"{v / 1e9:.3g} GB/s"


def ns(v):
    return f"{v / 1e3:.3g} µs" if v >= 1e3 else f"{v:.3g} ns"


def pct(v):
    return f"{v:.3g} %"


def cell(st, fmt, na=None):
    if st is None:
        return f"n/a ({na})" if na else "—"
    return f"{fmt(st['median'])} ({fmt(st['min'])} – {fmt(st['max'])})"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


# --- sections -----------------------------------------------------------------------------------

def build(path):
    """The IPC sections: {"md": [lines], "data": {...}, "goals": [...], "panels": [...]}."""
    runs = load(path)
    get = runs.get
    data = {"throughput": {}, "cpu": {}, "roundtrip": {}, "scaling": {}, "idle": {}, "memcpy": {}, "capacity": {}}

    for size in SIZES:
        data["memcpy"][size] = stat(get(("ipc_memcpy", size, "")), "bytes_per_second")
    tp_rows, cpu_rows = [], []
    for s in subjects(runs, "ipc_throughput"):
        data["capacity"][s] = {v: get(("ipc_throughput", s, v))["capacity"] for v in SIZES if get(("ipc_throughput", s, v))}
        caps = sorted(set(data["capacity"][s].values()), key=list(data["capacity"][s].values()).index)
        row, crow = [name(s), " / ".join(caps)], [name(s)]
        for size in SIZES:
            run = get(("ipc_throughput", s, size))
            m, b = stat(run, "msgs_per_s"), stat(run, "bytes_per_s")
            tx, rx = stat(run, "sender_cpu_ns"), stat(run, "receiver_cpu_ns")
            data["throughput"].setdefault(s, {})[size] = {"msgs_per_s": m, "bytes_per_s": b,
                                                          "na": run["na"] if run else "not run"}
            data["cpu"].setdefault(s, {})[size] = {"sender_ns": tx, "receiver_ns": rx}
            row.append(f"{rate(m['median'])} · {gbps(b['median'])} ({rate(m['min'])} – {rate(m['max'])})"
                       if m else cell(None, None, run["na"] if run else "not run"))
            crow.append(f"{ns(tx['median'])} / {ns(rx['median'])}" if tx else "n/a")
        tp_rows.append(row)
        cpu_rows.append(crow)
    tp_rows.append(["memcpy of one message, in cache (ceiling)", "—"]
                   + [gbps(data["memcpy"][z]["median"]) if data["memcpy"][z] else "—" for z in SIZES])

    rt_rows = []
    for s in subjects(runs, "ipc_roundtrip"):
        d = {}
        for mode in ("active", "asleep"):
            run = get(("ipc_roundtrip", s, mode))
            d[mode] = {"p50": stat(run, "p50_ns"), "p99": stat(run, "p99_ns")}
        data["roundtrip"][s] = d
        rt_rows.append([name(s)] + [cell(d[m][q], ns) for m in ("active", "asleep") for q in ("p50", "p99")])

    sc_rows = []
    counts = ["1 producers", "2 producers", "4 producers"]
    for s in subjects(runs, "ipc_scaling"):
        d = {c: stat(get(("ipc_scaling", s, c)), "msgs_per_s") for c in counts}
        data["scaling"][s] = d
        sc_rows.append([name(s)] + [cell(d[c], rate, (get(("ipc_scaling", s, c)) or {}).get("na")) for c in counts])

    idle_rows = []
    for s in subjects(runs, "ipc_idle"):
        st = stat(get(("ipc_idle", s, "")), "cpu_percent")
        data["idle"][s] = st
        idle_rows.append([name(s), cell(st, pct)])

    pr_rows = []
    for s in subjects(runs, "ipc_priorities"):
        run = get(("ipc_priorities", s, ""))
        st = stat(run, "msgs_per_s")
        data.setdefault("priorities", {})[s] = st
        tx, rx = stat(run, "sender_cpu_ns"), stat(run, "receiver_cpu_ns")
        pr_rows.append([name(s), run["capacity"], cell(st, rate, run["na"]),
                        f"{ns(tx['median'])} / {ns(rx['median'])}" if tx else "n/a"])

    goals = targets(data)
    reps = max((len(r["reps"]) for r in runs.values()), default=0)
    md = ["## IPC between two processes", "",
          f"lockstep_bench_ipc (bench/ipc_bench.cpp): two processes (fork), one figure per peer, all in "
          f"this run, {reps} repetitions per figure (median; spread: fastest – slowest). Capacity: POSIX mq, lockstep's and Boost's queues at fs.mqueue.msg_max messages "
          "(never raised); the shared-memory rings at 64 KiB of messages (at least 8), like a pipe; "
          "pipes, sockets and SysV msgq at the kernel's defaults. \"in place\": the producer writes every "
          "byte into the reserved slot, the consumer reads every cache line where it lies; every other "
          "receiver copies the message out.", "",
          "### IPC one-way throughput", "",
          "Streaming for 40 ms per repetition, first send to last receive, pinned to two CPUs. "
          "Cells: messages/s · bytes/s (spread of messages/s).", "",
          table(["subject", "capacity"] + SIZES, tp_rows), "",
          "### IPC CPU time per message", "",
          "Sender / receiver CPU time per message in the throughput runs (thread CPU time over the "
          "messages): what the transport costs each side, whatever else shares the machine.", "",
          table(["subject"] + SIZES, cpu_rows), "",
          "### IPC round trip", "",
          "64 B there and back through two queues, one sample per round trip. Active: back to back. "
          "Asleep: the sender sleeps 100 µs before each message, so the other side has gone to sleep "
          "and each sample includes a wake-up.", "",
          table(["subject", "active p50", "active p99", "asleep p50", "asleep p99"], rt_rows), "",
          "### IPC scaling: producers into one consumer", "",
          "64 B messages; N producer processes, not pinned: **2 and 4 producers plus the consumer "
          "oversubscribe the 2 CPUs**, so these rows measure scheduling as much as the queue.", "",
          table(["subject", "1 producer", "2 producers", "4 producers"], sc_rows), "",
          "### IPC message queues with mixed priorities", "",
          "64 B, priorities 1-8 mixed (message i at i × 5 mod 8 + 1), otherwise as the one-way "
          "throughput; the receiver checks the count, not the order.", "",
          table(["subject", "capacity", "messages/s", "CPU per message (sender / receiver)"], pr_rows), "",
          "### IPC idle blocked receiver", "",
          "A receiver blocked on an empty queue for 330 ms: its CPU time over that time (spin, sleep, "
          "wake-up). A busy-polling design burns a whole core.", "",
          table(["subject", "CPU"], idle_rows), ""]
    return {"md": md, "data": data, "goals": goals, "panels": panels(data)}


# --- targets (issue 14) -------------------------------------------------------------------------

def med(st):
    return st["median"] if st else None


def targets(d):
    out = []

    def add(what, measured, met):
        out.append({"target": what, "measured": measured, "met": met})

    tp = d["throughput"]

    def t(s, size, f="msgs_per_s"):
        return med(tp.get(s, {}).get(size, {}).get(f))

    ch = {s: t(s, "64 B") for s in (CHANNEL, IN_PLACE) if t(s, "64 B")}
    if ch:
        best = max(ch, key=ch.get)
        add("channel 64 B one-way ≥ 10 M msgs/s", "; ".join(f"{s}: {rate(v)}" for s, v in ch.items()),
            ch[best] >= 10e6)
        pipe = t("pipe", "64 B")
        if pipe:
            add("channel 64 B ≥ 3.5× pipe", f"{best} {rate(ch[best])} vs pipe {rate(pipe)}: {ch[best] / pipe:.1f}×",
                ch[best] >= 3.5 * pipe)
    rt = {s: med(d["roundtrip"].get(s, {}).get("active", {}).get("p50")) for s in (CHANNEL, IN_PLACE)}
    rt = {s: v for s, v in rt.items() if v}
    if rt:
        best = min(rt, key=rt.get)
        add("channel round trip p50 ≤ 1 µs, both sides active", "; ".join(f"{s}: {ns(v)}" for s, v in rt.items()),
            rt[best] <= 1e3)
    ip, mc = t(IN_PLACE, "16 KiB", "bytes_per_s"), med(d["memcpy"].get("16 KiB"))
    if ip and mc:
        add("channel write-in-place 16 KiB ≥ 50% of memcpy bandwidth",
            f"{gbps(ip)} vs memcpy {gbps(mc)}: {100 * ip / mc:.0f}%", ip >= 0.5 * mc)
    mq = t(MQ, "64 B")
    for peer, factor in (("POSIX mq", 5), ("boost::interprocess::message_queue", 3)):
        p = t(peer, "64 B")
        if mq and p:
            extra = ""
            mq1, p1 = t(MQ, "1 KiB"), t(peer, "1 KiB")
            if mq1 and p1:
                extra = f" (1 KiB: {mq1 / p1:.1f}×)"
            add(f"message queue ≥ {factor}× {peer} at equal depth (64 B one-way)",
                f"{rate(mq)} vs {rate(p)}: {mq / p:.1f}×{extra}", mq >= factor * p)
    for s in (CHANNEL, MQ):
        v = med(d["idle"].get(s))
        if v is not None:
            add(f"idle blocked receiver < 1% of a CPU ({s})", pct(v), v < 1.0)
    return out


# --- chart --------------------------------------------------------------------------------------

def kind(s):
    if s == CHANNEL:
        return "ours"
    if ours(s):
        return "ours_alt"
    return "floor" if s.startswith("floor") else "peer"


def panels(d):
    out = []
    for size in SIZES:
        rows = [(s, v[size]["msgs_per_s"]["median"], v[size]["msgs_per_s"]["min"], v[size]["msgs_per_s"]["max"], kind(s))
                for s, v in d["throughput"].items() if v[size]["msgs_per_s"]]
        na = [s for s, v in d["throughput"].items() if not v[size]["msgs_per_s"]]
        note = ("n/a: " + ", ".join(na)) if na else ""
        if rows:
            out.append(("bar", (f"IPC one-way throughput, {size} messages: higher is better", rows, "ops/s", note)))
    for mode, q, what in (("active", "p50", "both sides active: median"), ("active", "p99", "both sides active: 99th percentile"),
                          ("asleep", "p50", "the other side asleep (its wake-up included): median")):
        rows = [(s, v[mode][q]["median"], v[mode][q]["min"], v[mode][q]["max"], kind(s))
                for s, v in d["roundtrip"].items() if v[mode][q]]
        if rows:
            out.append(("bar", (f"IPC round trip 64 B, {what}, lower is better", rows, "ns")))
    return out
