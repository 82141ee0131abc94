#!/usr/bin/env python3
"""bench/report.py: turns one tools/bench run into bench/results/<date>-<host>.{md,json,svg}.

Input: the Google Benchmark JSON of the full run (lockstep_bench), of the IPC run
(lockstep_bench_ipc: bench/ipc_report.py makes its tables, targets and chart panels), of each
spin-sweep binary (lockstep_bench_spins_<N>), and the disassembled mutex fast path. Every figure is the
median over the repetitions, with the fastest and slowest repetition as its spread, and every
ratio compares lockstep with a peer measured in the same run.

Benchmark names are "<group>/<subject>[/<variant>]" (bench/common.hpp); subjects starting with
"lockstep::" are ours.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart  # noqa: E402
import gbench  # noqa: E402
import ipc_report  # noqa: E402

US = 1e3  # ns per microsecond


# --- reading ------------------------------------------------------------------------------------

def load_runs(path):
    """{(group, subject, variant): [repetition dict, ...]} from a Google Benchmark JSON file."""
    context, reps = gbench.iterations(path)
    runs = {}
    for key, b in reps:
        if b.get("error_occurred"):
            sys.exit(f"report: {b['name']} failed: {b.get('error_message')}")
        runs.setdefault(key, []).append(b)
    return context, runs


def stat(reps, field):
    vals = [r[field] for r in reps]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def is_ours(subject):
    return subject.startswith("lockstep::")


def group(runs, name, variant=""):
    """[(subject, reps)] of a group in run order, ours first."""
    rows = [(s, reps) for (g, s, v), reps in runs.items() if g == name and v == variant]
    return sorted(rows, key=lambda r: not is_ours(r[0]))


def variants(runs, name):
    seen = []
    for g, _, v in runs:
        if g == name and v not in seen:
            seen.append(v)
    return seen


# --- formatting ---------------------------------------------------------------------------------

def ns(v):
    if v >= 1e6:
        return f"{v / 1e6:.3g} ms"
    if v >= 1e4:
        return f"{v / 1e3:.3g} µs"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.3g} ns"


def mops(v):
    return f"{v / 1e6:.1f} M/s"


def spread(s, f):
    return f"{f(s['min'])} – {f(s['max'])}"


def times(x):
    return f"{x:.2f}×"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# --- sections -----------------------------------------------------------------------------------

def speedup(ours, peer, higher_is_better):
    """How many times faster lockstep is than the peer (>1: lockstep faster)."""
    return ours / peer if higher_is_better else peer / ours


def simple_section(runs, name, field, fmt, higher_is_better, extra=None):
    """A table of one metric per subject, with lockstep's speed-up over each peer; and the data."""
    rows = group(runs, name)
    stats = {s: stat(reps, field) for s, reps in rows}
    ours = [s for s, _ in rows if is_ours(s)]
    head = ["subject", "median", "spread (min – max)"] + [f"{o} speed-up" for o in ours]
    body = []
    for s, reps in rows:
        cells = [f"**{s}**" if is_ours(s) else s, fmt(stats[s]["median"]), spread(stats[s], fmt)]
        for o in ours:
            cells.append("" if o == s else times(speedup(stats[o]["median"], stats[s]["median"], higher_is_better)))
        if extra:
            cells.append(extra(reps))
        body.append(cells)
    if extra:
        head.append("fairness (min/max share)")
    return table(head, body), stats


def pingpong_section(runs):
    rows = group(runs, "pingpong")
    stats = {s: {"p50": stat(r, "p50_ns"), "p99": stat(r, "p99_ns"), "mean": stat(r, "real_time")} for s, r in rows}
    ours = [s for s, _ in rows if is_ours(s)]
    head = ["subject", "p50", "p50 spread", "p99", "mean"] + [f"{o} speed-up (p50 / p99)" for o in ours]
    body = []
    for s, _ in rows:
        st = stats[s]
        cells = [f"**{s}**" if is_ours(s) else s, ns(st["p50"]["median"]), spread(st["p50"], ns),
                 ns(st["p99"]["median"]), ns(st["mean"]["median"])]
        for o in ours:
            cells.append("" if o == s else
                         f"{times(st['p50']['median'] / stats[o]['p50']['median'])} / "
                         f"{times(st['p99']['median'] / stats[o]['p99']['median'])}")
        body.append(cells)
    return table(head, body), stats


def handoff_section(runs):
    holds = variants(runs, "mutex_handoff")
    subjects = [s for s, _ in group(runs, "mutex_handoff", holds[0])]
    data = {s: {h: {k: stat(runs[("mutex_handoff", s, h)], f) for k, f in
                    (("p50", "p50_ns"), ("p99", "p99_ns"), ("cpu", "waiter_cpu_ns"))}
                for h in holds} for s in subjects}
    names = [h.replace("hold:", "") for h in holds]
    lat = table(["lock \\ held for"] + names,
                [[f"**{s}**" if is_ours(s) else s] +
                 [f"{ns(data[s][h]['p50']['median'])} ({ns(data[s][h]['p99']['median'])})" for h in holds]
                 for s in subjects])
    cpu = table(["lock \\ held for"] + names,
                [[f"**{s}**" if is_ours(s) else s] + [ns(max(data[s][h]["cpu"]["median"], 0)) for h in holds]
                 for s in subjects])
    return lat, cpu, data, holds


def sweep_section(sweeps):
    """sweeps: {spins: runs}. One row per max_spins value: what the semaphore's spin window buys and
    costs. The mutex does not read max_spins (it polls by its own rule, mutex.hpp S1)."""
    rows, data = [], {}
    for spins in sorted(sweeps):
        runs = sweeps[spins]
        d = {"window_ns": stat(runs[("reference", "spin window (max_spins steps)", "")], "real_time")["median"]}
        pp = [(s, r) for s, r in group(runs, "pingpong") if is_ours(s)]
        d["pingpong"] = {s: {"p50": stat(r, "p50_ns")["median"], "p99": stat(r, "p99_ns")["median"]} for s, r in pp}
        data[spins] = d
        cells = [str(spins), ns(d["window_ns"])]
        cells += [f"{ns(v['p50'])} / {ns(v['p99'])}" for v in d["pingpong"].values()]
        rows.append(cells)
    pp_names = list(next(iter(data.values()))["pingpong"]) if data else []
    head = ["max_spins", "spin window"] + [f"ping-pong {s}: p50 / p99" for s in pp_names]
    return table(head, rows), data


# --- scaling (lockstep_bench_scaling) -------------------------------------------------------------

SCALING_GROUPS = [("scaling_tight", "Locks, empty critical section"),
                  ("scaling_moderate", "Locks, ~40 ns inside, ~200 ns of private work outside"),
                  ("bounded_buffer", "Bounded buffer: N/2 producers, N/2 consumers, 64 slots, two counting "
                                     "semaphores + a mutex (items/s)")]


# The scaling tables' reference rows (bench/scaling.cpp nothing_shared, shared_atomic): the same
# work with no lock, with nothing shared ("no lock": the throughput ceiling and the scheduler's
# own fairness) or with one shared atomic counter ("no lock, shared atomic counter": what moving
# one cache line between CPUs costs). Not peers: no verdict compares with them.
NO_LOCK = "no lock"


def is_reference(subject):
    return subject == NO_LOCK or subject.startswith(NO_LOCK + ",")


def threads_of(variant):
    return int(variant.split(":")[1])


def scaling_data(runs):
    """{group: {subject: {threads: {"ops": stat, "fair": stat, "cpu": stat, "csw": stat}}}}, ours first, no lock last."""
    data = {}
    for g, _ in SCALING_GROUPS:
        subjects = {}
        for (grp, s, v), reps in runs.items():
            if grp != g:
                continue
            subjects.setdefault(s, {})[threads_of(v)] = {k: stat(reps, f) for k, f in
                                                          (("ops", "ops_per_s"), ("fair", "fairness"),
                                                           ("cpu", "cpu_ns_per_op"), ("csw", "csw_per_op"))}
        # A fixed order (the figures arrive interleaved, in a random order): lockstep::mutex, ours,
        # the peers by name, the reference rows; thread counts ascending.
        def rank(subject):
            return (0 if subject == "lockstep::mutex" else 1 if is_ours(subject) else 3 if is_reference(subject) else 2,
                    subject.lower())
        data[g] = {s: dict(sorted(per.items())) for s, per in sorted(subjects.items(), key=lambda kv: rank(kv[0]))}
    return data


def scaling_groups(data):
    """(group, title, {subject: per thread count}, [thread counts]) of each group that ran."""
    for g, title in SCALING_GROUPS:
        if data.get(g):
            yield g, title, data[g], sorted({n for per in data[g].values() for n in per})


def scaling_tables(data):
    """Per group: throughput and fairness by thread count, and the CPU time all threads burn per operation."""
    out = []
    for _, title, d, ns_ in scaling_groups(data):
        head = ["subject \\ threads"] + [str(n) for n in ns_]

        def name(s):
            return f"**{s}**" if is_ours(s) else f"*{s}* (reference)" if is_reference(s) else s
        tp = table(head, [[name(s)] + [f"{mops(per[n]['ops']['median'])} ({per[n]['fair']['median']:.2f})"
                                       if n in per else "" for n in ns_] for s, per in d.items()])
        cpu = table(head, [[name(s)] + [f"{ns(per[n]['cpu']['median'])} / {per[n]['csw']['median'] * 1e3:.3g} "
                                        f"/ {per[n]['cpu']['median'] * per[n]['ops']['median'] * 1e-9:.2f}"
                                        if n in per else "" for n in ns_] for s, per in d.items()])
        out += [f"### {title}", "", "Throughput (fairness: the slowest thread's count over the fastest's):", "", tp,
                "", "CPU time of all threads per operation / context switches per 1000 operations / CPUs the threads "
                "kept busy (CPU time per operation × throughput; with other load on the machine, below its CPU count):",
                "", cpu, ""]
    return "\n".join(out)


# The resolution of one run's scaling table. Medians of 3 repetitions of the same code, in four
# interleaved runs on the reference VM, differed by a median of 9% in throughput and 0.13 in
# fairness (docs/performance.md, "The resolution of the scaling tables"). A figure that falls
# short of its peer's by less than the margins below is a tie, not a verdict either way; they
# are deliberately tighter than that measured spread.
TIE_THROUGHPUT = 0.05  # ratio below 1
TIE_FAIRNESS = 0.10    # absolute, on the min/max share


def scaling_verdict(ratio, fairness_diff):
    """True (met: throughput ratio ≥ 1 and fairness ≥ std's), "tie" (short of that, but within the
    table's resolution on both), False (short by more), or None (std::mutex not measured)."""
    if fairness_diff is None:
        return None
    if ratio >= 1 and fairness_diff >= 0:
        return True
    if ratio >= 1 - TIE_THROUGHPUT and fairness_diff >= -TIE_FAIRNESS:
        return "tie"
    return False


def scaling_targets(data, con=None, con_fairness=None):
    """Issue 13's targets, each judged on figures of one run."""
    out = []

    def add(what, measured, met):
        out.append({"target": what, "measured": measured, "met": met})

    if con and "lockstep::mutex" in con and "futex mutex, no owner" in con:
        c, u = con["lockstep::mutex"]["median"], con["futex mutex, no owner"]["median"]
        f = con_fairness["lockstep::mutex"]["median"]
        add("2 threads contended (pinned): ≥ 0.9× the ownerless futex mutex, fairness ≥ 0.8",
            f"{mops(c)} vs {mops(u)}: {c / u:.2f}×; fairness {f:.2f}", c >= 0.9 * u and f >= 0.8)
    ours = "lockstep::mutex"
    for g in ("scaling_tight", "scaling_moderate"):
        d = data.get(g, {})
        if ours not in d:
            continue
        for n in (4, 8, 16):
            if n not in d[ours]:
                continue
            me = d[ours][n]
            peers = {s: per[n] for s, per in d.items() if not is_ours(s) and not is_reference(s) and n in per}
            best = max(peers, key=lambda s: peers[s]["ops"]["median"])
            std_f = peers.get("std::mutex", {}).get("fair", {}).get("median")
            floor = d.get(NO_LOCK, {}).get(n, {}).get("fair", {}).get("median")
            ops, best_ops, fair = me["ops"]["median"], peers[best]["ops"]["median"], me["fair"]["median"]
            add(f"{g.replace('scaling_', '')}, {n} threads: {ours} ≥ every peer, fairness ≥ std::mutex's",
                f"{mops(ops)} vs best peer {best} {mops(best_ops)}: {ops / best_ops:.2f}×; fairness {fair:.2f} "
                + (f"vs {std_f:.2f}" if std_f is not None else "(std::mutex not measured)")
                + (f" (no lock: {floor:.2f})" if floor is not None else ""),
                scaling_verdict(ops / best_ops, None if std_f is None else fair - std_f))
    d = data.get("bounded_buffer", {})
    mine = "lockstep::counting_semaphore + mutex"
    rivals = ("std::counting_semaphore + std::mutex", "sem_t + pthread_mutex")
    for n in (2, 4, 8, 16):
        if mine not in d or n not in d[mine] or not all(r in d and n in d[r] for r in rivals):
            continue
        me = d[mine][n]["ops"]["median"]
        them = [d[r][n]["ops"]["median"] for r in rivals]
        add(f"bounded buffer, {n} threads: lockstep ≥ std semaphores + std::mutex and ≥ sem_t + pthread",
            "; ".join(f"{me / t:.2f}× {r} ({mops(t)})" for r, t in zip(rivals, them)) + f"; lockstep {mops(me)}",
            all(me >= t for t in them))
    return out


def scaling_chart(meta, data):
    panels = []
    for _, title, d, ns_ in scaling_groups(data):
        # Locks only: the reference rows are in the tables ("no lock" counts billions of empty
        # loop turns per second, and would flatten every lock's line).
        series = [(s, [per[n]["ops"]["median"] if n in per else None for n in ns_], is_ours(s))
                  for s, per in d.items() if not is_reference(s)]
        panels.append(("line", (f"{title}: throughput, higher is better", [str(n) for n in ns_], series,
                                f"threads on {meta['cpus']} CPUs", "ops/s")))
    subtitle = f"{meta['date'][:10]} · {meta['host']} · {meta['cpu']} · {meta['cpus']} vCPUs · median of repetitions"
    return chart.render("lockstep under contention and oversubscription", subtitle, panels)


# --- targets ------------------------------------------------------------------------------------

def targets(unc, con, sem, pp):
    out = []

    def add(what, measured, met):
        out.append({"target": what, "measured": measured, "met": met})

    m, floor, std = unc["lockstep::mutex"]["median"], unc["floor: CAS + store"]["median"], unc["std::mutex"]["median"]
    add("mutex uncontended lock+unlock within 1.5× of the floor (CAS + store)",
        f"{ns(m)} vs {ns(floor)}: {m / floor:.2f}× the floor", m <= 1.5 * floor)
    add("mutex uncontended faster than std::mutex", f"{ns(m)} vs {ns(std)}: {std / m:.2f}× faster", m < std)
    pth = {s: v["median"] for s, v in con.items() if s.startswith("pthread")}
    best = max(pth, key=pth.get)
    c = con["lockstep::mutex"]["median"]
    add("2-thread contended throughput no lower than the best pthread mutex",
        f"{mops(c)} vs {best} {mops(pth[best])}: {c / pth[best]:.2f}×", c >= pth[best])
    ours_sem = [s for s in sem if is_ours(s)]
    if not ours_sem:
        add("semaphore uncontended release+acquire no slower than sem_t", "not measured: no lockstep semaphore yet", None)
    for s in ours_sem:
        v, p = sem[s]["median"], sem["sem_t"]["median"]
        add(f"{s} uncontended release+acquire no slower than sem_t", f"{ns(v)} vs {ns(p)}: {p / v:.2f}×", v <= p)
    ours_bin = [s for s in pp if is_ours(s) and "binary" in s]
    if not ours_bin:
        add("binary-semaphore ping-pong no slower than std::binary_semaphore, ≥5× faster than sem_t",
            "not measured: no lockstep binary semaphore yet", None)
    for s in ours_bin:
        v, st, pt = (pp[x]["p50"]["median"] for x in (s, "std::binary_semaphore", "sem_t"))
        v99, st99 = pp[s]["p99"]["median"], pp["std::binary_semaphore"]["p99"]["median"]
        add(f"{s} ping-pong round trip no slower than std::binary_semaphore",
            f"p50 {ns(v)} vs {ns(st)} ({st / v:.2f}×); p99 {ns(v99)} vs {ns(st99)} ({st99 / v99:.2f}×)",
            v <= st and v99 <= st99)
        add(f"{s} ping-pong round trip ≥5× faster than sem_t", f"p50 {ns(v)} vs {ns(pt)}: {pt / v:.1f}×", pt >= 5 * v)
    return out


def owner_cost(unc, fast_path):
    """Ownership checking: lockstep::mutex against the same futex protocol with no owner."""
    m, u, f = unc["lockstep::mutex"], unc["futex mutex, no owner"], unc["floor: CAS + CAS"]
    calls = [l for l in fast_path.splitlines() if re.search(r"\bcall", l)]
    locked = [l for l in fast_path.splitlines() if "lock " in l]
    insns = [l for l in fast_path.splitlines() if re.match(r"\s*[0-9a-f]+:\s", l)]
    return (f"lockstep::mutex {ns(m['median'])} ({spread(m, ns)}) vs the same futex protocol without an owner "
            f"{ns(u['median'])} ({spread(u, ns)}): {m['median'] / u['median']:.2f}×; against the floor of a lock "
            f"that may sleep (CAS + CAS, no owner, no futex) {ns(f['median'])} ({spread(f, ns)}): "
            f"{m['median'] / f['median']:.2f}×. "
            f"Fast path (lock+unlock, disassembled below): {len(insns)} instructions, "
            f"{len(locked)} locked instructions, {len(calls)} calls.")


# --- machine ------------------------------------------------------------------------------------

def machine(context, build_dir):
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    compiler = "unknown compiler"
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            cxx = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", f.read(), re.M).group(1)
        compiler = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, AttributeError, IndexError):
        pass
    with open("/proc/loadavg") as f:
        load_end = f.read().split()[:3]
    return {"host": context["host_name"], "cpu": cpu, "cpus": context["num_cpus"], "mhz": context["mhz_per_cpu"],
            "kernel": platform.release(), "compiler": compiler, "date": context["date"],
            "load_avg_start": [round(x, 2) for x in context["load_avg"]], "load_avg_end": load_end,
            "benchmark_library_build": context.get("library_build_type", "?")}


# --- chart --------------------------------------------------------------------------------------

def kind(subject, ours_seen):
    if is_ours(subject):
        return "ours" if subject == ours_seen[0] else "ours_alt"
    return "floor" if subject.startswith("floor") else "peer"


def bars(stats, field=None):
    ours = [s for s in stats if is_ours(s)]
    rows = []
    for s, st in stats.items():
        st = st[field] if field else st
        rows.append((s, st["median"], st["min"], st["max"], kind(s, ours)))
    return rows


def build_chart(meta, unc, con, sem, pp, handoff, holds, ref, extra_panels=()):
    panels = [("bar", ("Mutex, uncontended lock+unlock: time per pair, lower is better", bars(unc), "ns")),
              ("bar", ("Mutex, 2 threads on one counter: throughput, higher is better", bars(con), "ops/s")),
              ("bar", ("Semaphore, uncontended release+acquire: lower is better", bars(sem), "ns")),
              ("bar", ("Semaphore ping-pong: round-trip median (p50), lower is better", bars(pp, "p50"), "ns",
                       "whisker: min–max over repetitions")),
              ("bar", ("Semaphore ping-pong: round-trip 99th percentile, lower is better", bars(pp, "p99"), "ns"))]
    series = [(s, [handoff[s][h]["p50"]["median"] for h in holds], is_ours(s)) for s in handoff]
    window = ref["spin window (max_spins steps)"]["median"]
    panels.append(("line", (f"Mutex hand-off: unlock → blocked waiter running (p50); lockstep spins {ns(window)}",
                            [h.replace("hold:", "") for h in holds], series,
                            "how long the waiter had been blocked before the unlock", "ns")))
    panels += list(extra_panels)
    subtitle = (f"{meta['date'][:10]} · {meta['host']} · {meta['cpu']} · {meta['cpus']} vCPUs · {meta['compiler']} · "
                f"median of repetitions; blue: lockstep, orange: floor, grey: peers")
    return chart.render("lockstep benchmarks", subtitle, panels)


# --- main ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--main", required=True, help="Google Benchmark JSON of lockstep_bench")
    ap.add_argument("--sweep", nargs="*", default=[], help="JSON of lockstep_bench_spins_<N> (N from the name)")
    ap.add_argument("--ipc", help="Google Benchmark JSON of lockstep_bench_ipc (bench/ipc_report.py)")
    ap.add_argument("--fast-path", required=True, help="disassembly of lockstep_bench_fast_path")
    ap.add_argument("--scaling", help="Google Benchmark JSON of lockstep_bench_scaling (1-16 threads)")
    ap.add_argument("--build", required=True, help="the build directory (for the compiler's name)")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--seconds", type=float, default=0, help="wall time of the run")
    ap.add_argument("--other-load", type=float, default=0, help="CPUs kept busy by other processes meanwhile")
    args = ap.parse_args()

    context, runs = load_runs(args.main)
    sweeps = {}
    for path in args.sweep:
        spins = int(re.search(r"spins_(\d+)", os.path.basename(path)).group(1))
        sweeps[spins] = load_runs(path)[1]
    with open(args.fast_path) as f:
        fast_path = f.read().strip()
    meta = machine(context, args.build)
    meta["run_seconds"] = round(args.seconds)
    meta["other_load_cpus"] = args.other_load
    reps = max(len(r) for r in runs.values())

    unc_md, unc = simple_section(runs, "mutex_uncontended", "real_time", ns, False)
    fair = lambda reps: f"{stat(reps, 'fairness')['median']:.2f}"  # noqa: E731
    con_md, con = simple_section(runs, "mutex_contended", "ops_per_s", mops, True, fair)
    fairness = {s: stat(r, "fairness") for s, r in group(runs, "mutex_contended")}
    sem_md, sem = simple_section(runs, "semaphore_uncontended", "real_time", ns, False)
    pp_md, pp = pingpong_section(runs)
    ho_lat, ho_cpu, handoff, holds = handoff_section(runs)
    ref_md, ref = simple_section(runs, "reference", "real_time", ns, False)
    sweep_md, sweep = sweep_section(sweeps) if sweeps else ("(no sweep in this run)", {})
    ipc = ipc_report.build(args.ipc) if args.ipc else {"md": [], "data": {}, "goals": [], "panels": []}
    goals = targets(unc, con, sem, pp) + ipc["goals"]
    owner = owner_cost(unc, fast_path)

    verdict = {True: "met", False: "**not met**", None: "not measured", "tie": "tie (within resolution)"}
    md = [f"# lockstep benchmarks: {meta['date'][:10]} on {meta['host']}", "",
          f"{meta['cpu']}, {meta['cpus']} vCPUs at {meta['mhz']} MHz, Linux {meta['kernel']}, {meta['compiler']}, "
          f"Release (-O3). Google Benchmark (library built as {meta['benchmark_library_build']}), "
          f"{reps} repetitions per figure; each figure is the median of the repetitions, its spread the "
          f"fastest and slowest repetition. Load average {' '.join(map(str, meta['load_avg_start']))} at the start, "
          f"{' '.join(meta['load_avg_end'])} at the end; other processes kept {meta['other_load_cpus']:.2f} CPUs busy "
          f"on average while the benchmarks ran{' (**the figures are disturbed**)' if meta['other_load_cpus'] > 0.2 else ''}; "
          f"the whole run took {meta['run_seconds']} s. Two-thread figures pin their threads to two different CPUs. "
          "Speed-up columns: how many times faster lockstep is than that row (below 1: slower), "
          "from figures of this same run.", "",
          f"![chart]({os.path.basename(args.out)}.svg)", "",
          "## Targets", "", table(["target", "measured", "verdict"],
                                  [[g["target"], g["measured"], verdict[g["met"]]] for g in goals]), "",
          f"Ownership checking and TSan annotations: {owner}", "",
          "## Mutex, uncontended lock+unlock", "", unc_md, "",
          "## Mutex, two threads incrementing one counter", "",
          "Both threads run for the same window; throughput counts both; fairness is the smaller "
          "thread's share over the larger's (1 = equal).", "", con_md, "",
          "## Semaphore, uncontended release+acquire", "", sem_md, "",
          "## Semaphore ping-pong (hand-off latency)", "",
          "Two threads bounce a token through two semaphores; one sample is one round trip (two "
          f"hand-offs), timed one by one, and includes one clock read ({ns(ref['steady_clock::now']['median'])}).",
          "", pp_md, "",
          "## Mutex hand-off: unlock to a blocked waiter running", "",
          "The waiter called lock() while the mutex was held, and the holder kept it for the time in "
          "the column head. Cells: p50 (p99).", "", ho_lat, "",
          "The waiter's CPU time per hand-off (its thread CPU time over the window, per round; about "
          "0.1-0.2 µs of it is the busy-poll for the next round to start): what the latency costs.", "", ho_cpu, "",
          *ipc["md"],
          "## Spin policy sweep (seam::max_spins)", "",
          "The semaphore ping-pong again, built with each max_spins value (lockstep_bench_spins_<N>, "
          "fewer repetitions). The mutex does not read max_spins: it polls by its own rule "
          "(mutex.hpp S1), shown in the hand-off table above.", "", sweep_md, "",
          "## Reference", "", ref_md, "",
          "## Fast path of lockstep::mutex (lock+unlock), as compiled", "", "```", fast_path, "```", ""]

    scaling = scaling_data(load_runs(args.scaling)[1]) if args.scaling else {}
    if scaling:
        scaling_goals = scaling_targets(scaling, con, fairness)
        goals += scaling_goals
        md[md.index("## Reference"):md.index("## Reference")] = [
            "## Scaling: 1 to 16 threads on the machine's CPUs", "",
            "lockstep_bench_scaling (bench/scaling.cpp): the threads are not pinned, so above the CPU count "
            "they are oversubscribed; each figure is the median of its repetitions, run interleaved in a random "
            "order with every other figure's; each repetition runs 100 ms, or 500 ms when threads outnumber "
            "CPUs (the scheduler's time slices need the longer window: see the \"no lock\" rows, the same work "
            "with no lock, whose fairness is the scheduler's own). Cells: throughput (fairness). "
            f"A tie: short of the target by less than the table's resolution ({TIE_THROUGHPUT:.0%} in throughput, "
            f"{TIE_FAIRNESS:.2f} in fairness; medians of the same code differ by about that between runs). "
            "The CPU table is what waiting costs: all threads' CPU time per operation (spinning shows here, "
            f"sleeping does not) and context switches per operation. Chart: {os.path.basename(args.out)}-scaling.svg.",
            "", f"![scaling]({os.path.basename(args.out)}-scaling.svg)", "",
            table(["target", "measured", "verdict"], [[g["target"], g["measured"], verdict[g["met"]]] for g in scaling_goals]),
            "", scaling_tables(scaling), ""]
        with open(args.out + "-scaling.svg", "w") as f:
            f.write(scaling_chart(meta, scaling))
    summary = {"machine": meta, "repetitions": reps, "targets": goals, "ownership_cost": owner,
               "mutex_uncontended": unc, "mutex_contended": con, "mutex_contended_fairness": fairness,
               "semaphore_uncontended": sem, "pingpong": pp, "mutex_handoff": handoff, "reference": ref,
               "ipc": ipc["data"],
               "spin_sweep": {str(k): v for k, v in sweep.items()}, "fast_path": fast_path.splitlines(),
               "scaling": {g: {s: {str(n): v for n, v in per.items()} for s, per in d.items()} for g, d in scaling.items()}}
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md))
    with open(args.out + ".json", "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    with open(args.out + ".svg", "w") as f:
        f.write(build_chart(meta, unc, con, sem, pp, handoff, holds, ref, ipc["panels"]))
    for g in goals:
        print(f"target {verdict[g['met']]:>14}: {g['target']}: {g['measured']}")


if __name__ == "__main__":
    main()
