"""tools/suite.py: the model suite as data: build it, list it, run one binary of it.

Shared by tools/verify (the runner) and tools/traces (the trace regenerator); Python 3 standard
library only. What is in the suite comes from the build, never from a list kept here: CMake
writes <build>/models/manifest.tsv (kind, name, binary[, client]) with one row per model client
and per mutant (a mutant's binary is its client's, run with --mutant NAME), and each binary
lists its own models (--list). models/mutants.tsv says what each mutant breaks. The binaries
speak the protocol documented in models/harness/harness.hpp.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = ROOT / "build" / "default"
MUTANTS_TSV = ROOT / "models" / "mutants.tsv"
# Mutation points live in the production headers: <component>/include of every component
# (primitives/include, ipc/include, ...), the rule models/CMakeLists.txt's registry check uses.
HEADER_DIRS = sorted(p for p in ROOT.glob("*/include") if p.is_dir())
TRACE_DOCS = ROOT / "docs" / "traces"
DEFAULT_TIMEOUT = 300  # seconds per model binary run: the whole suite must stay well under 10 min


class SuiteError(Exception):
    """A problem the user must fix (bad option, failed build); the message says what."""


# ---------------------------------------------------------------------------------------------
# What the suite contains


@dataclass
class Binary:
    """A row of the manifest: a client's binary, or one of its mutants (the same binary)."""

    kind: str  # "model" (a client: runs every model of one primitive) or "mutant"
    name: str  # client name ("mutex") or mutant name ("mutex.unlock_no_wake")
    path: Path  # the client's binary, model_<client>, for both kinds
    client: str  # the client a mutant belongs to; for a model row, its own name


@dataclass
class Model:
    client: str
    name: str
    threads: int
    search: str  # as the harness spells it: "full", "bound:3", "random:200000"
    property: str

    @property
    def label(self) -> str:
        return f"{self.client}/{self.name}"


def read_manifest(build: Path) -> list[Binary]:
    path = build / "models" / "manifest.tsv"
    if not path.exists():
        raise SuiteError(f"{path} is missing: configure {build} first (cmake --preset default -B {build})")
    out = []
    for row in path.read_text().splitlines():
        if not row.strip():
            continue
        f = row.split("\t")
        client = f[3] if f[0] == "mutant" and len(f) > 3 else f[1]
        out.append(Binary(f[0], f[1], Path(f[2]), client))
    return out


def mutant_registry() -> dict[str, tuple[str, str]]:
    """models/mutants.tsv: mutant name -> (client, what it breaks)."""
    out = {}
    for row in MUTANTS_TSV.read_text().splitlines():
        if row.startswith("#") or not row.strip():
            continue
        name, client, what = (row.split("\t") + ["", ""])[:3]
        out[name] = (client, what)
    return out


def mutation_point(mutant: str) -> tuple[str, int] | None:
    """Where the headers say seam::mutant("<mutant>"): (path relative to the repo, line)."""
    needle = f'seam::mutant("{mutant}")'
    for header in sorted(h for d in HEADER_DIRS for h in d.rglob("*.hpp")):
        for n, line in enumerate(header.read_text(errors="replace").splitlines(), 1):
            if needle in line:
                return str(header.relative_to(ROOT)), n
    return None


def clients_in_source() -> list[str]:
    """Model clients that exist in the source tree (models/<client>_model.cpp)."""
    return sorted(p.name[: -len("_model.cpp")] for p in (ROOT / "models").glob("*_model.cpp"))


def list_models(binary: Binary) -> list[Model]:
    r = subprocess.run([str(binary.path), "--list"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SuiteError(f"{binary.path} --list failed:\n{r.stderr}")
    out = []
    for row in r.stdout.splitlines():
        name, threads, search, prop = row.split("\t", 3)
        out.append(Model(binary.client, name, int(threads), search, prop))
    return out


def search_label(search: str) -> str:
    """The harness's "bound:3" / "random:200000" as a person reads it."""
    kind, _, n = search.partition(":")
    return f"{kind} {n}" if n else kind


# ---------------------------------------------------------------------------------------------
# Building


def run_step(argv: list[str], echo, cwd: Path = ROOT) -> None:
    """Runs a build step, passing each output line to echo; raises SuiteError if it fails."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        echo(lines[-1])
    if proc.wait() != 0:
        tail = "\n".join(lines[-60:])
        raise SuiteError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{tail}")


def prepare(build: Path, echo, setup: bool = True) -> None:
    """tools/setup, then configure `build` with the default preset unless it is configured. A
    configured tree is re-configured (it takes a moment): a client or a mutants.tsv row added
    since must be in the manifest before we choose what to build from it."""
    if setup:
        run_step([str(ROOT / "tools" / "setup")], echo)
    if (build / "CMakeCache.txt").exists():
        run_step(["cmake", str(build)], echo)
    else:
        run_step(["cmake", "--preset", "default", "-B", str(build)], echo)


def add_build_options(ap) -> None:
    """The options every suite command shares (argparse)."""
    ap.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                    help=f"build tree to use (default: {DEFAULT_BUILD.relative_to(ROOT)}, the default preset)")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries already built there: no setup, configure or build")
    ap.add_argument("--jobs", type=positive, default=default_jobs(),
                    help="binaries to build and run in parallel (default: the number of CPUs, %(default)s)")
    ap.add_argument("--timeout", type=positive, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help="a model or mutant still running after this long fails (default: %(default)s)")


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text}")
    return n


def prepare_suite(build: Path, echo, no_build: bool, wanted=None) -> list[Binary]:
    """Sets up and configures `build` (unless no_build), then returns the manifest's rows that
    `wanted(rows)` selects (default: all). Builds nothing: see Build."""
    build = build.resolve()
    if not no_build:
        prepare(build, echo)
    binaries = read_manifest(build)
    return wanted(binaries) if wanted else binaries


class Build:
    """`cmake --build` of the binaries some manifest rows need, in the background. Its progress is
    one line (status()), not compiler output; on_built(path) is called (from the build's thread)
    as soon as the build reports a binary complete, so its models can run while the rest compiles.
    With a generator that does not report finished targets, every binary is announced at the end.
    wait() raises SuiteError, with the build's last lines, if it failed."""

    PERCENT = re.compile(r"^\[\s*(\d+)%\]")  # Unix Makefiles: "[ 45%] Building CXX object ..."
    STEPS = re.compile(r"^\[(\d+)/(\d+)\]")  # Ninja: "[3/7] Building CXX object ..."

    def __init__(self, build: Path, binaries: list[Binary], jobs: int, on_built=None, on_change=None):
        self.build = build.resolve()
        self.paths = list(dict.fromkeys(b.path for b in binaries))  # each client's binary once
        self.jobs = jobs
        self.on_built = on_built or (lambda path: None)
        self.on_change = on_change or (lambda: None)
        self.announced: set[Path] = set()
        self.lines: list[str] = []
        self.percent = 0
        # What the build is doing, by target: "compiling mutex_model.cpp", "linking model_mutex".
        # Make says when a step starts, not when it ends: a target's steps are dropped when it
        # links or is built, and only the last `jobs` are shown.
        self.active: dict[tuple[str, str], str] = {}
        self.started = self.ended = 0.0
        self.returncode: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Build":
        self.started = time.monotonic()
        self.thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started if self.started else 0.0

    def status(self) -> str:
        doing = ", ".join(list(self.active.values())[-self.jobs:]) or "checking what is out of date"
        built = f"  built {len(self.announced)}/{len(self.paths)}" if self.announced else ""
        return f"  > build {self.percent:3d}%  {doing}{built}  {self.seconds:.1f} s"

    def wait(self) -> None:
        self.thread.join()
        if self.returncode != 0:
            tail = "\n".join(self.lines[-60:])
            raise SuiteError(f"the build failed (cmake --build {self.build}, exit {self.returncode}):\n{tail}")

    def _run(self) -> None:
        # One target: make builds several goals one after the other (CMake's top-level Makefile is
        # .NOTPARALLEL), so more than one binary means the `models` target, which builds them all
        # in parallel.
        targets = [p.name for p in self.paths] if len(self.paths) == 1 else ["models"]
        argv = ["cmake", "--build", str(self.build), f"-j{self.jobs}", "--target", *targets]
        try:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace")
            for line in proc.stdout:
                self._line(line.rstrip("\n"))
            self.returncode = proc.wait()
        except OSError as err:
            self.lines.append(str(err))
            self.returncode = -1
        if self.returncode == 0:  # whatever was not reported built is built now
            for path in self.paths:
                self._built(path)
        self.ended = time.monotonic()
        self.on_change()

    def _line(self, line: str) -> None:
        self.lines.append(line)
        if m := self.PERCENT.match(line):
            self.percent = int(m.group(1))
        elif m := self.STEPS.match(line):
            self.percent = int(m.group(1)) * 100 // max(1, int(m.group(2)))
        what = line.split("] ", 1)[-1]
        if what.startswith("Building CXX object "):  # .../CMakeFiles/<target>.dir/<source>.o
            obj = Path(what.split()[-1])
            target = next((d[: -len(".dir")] for d in obj.parts if d.endswith(".dir")), "")
            self.active[(target, obj.stem)] = f"compiling {obj.stem}"
        elif what.startswith("Linking CXX "):
            name = Path(what.split()[-1]).name
            target = name.removeprefix("lib").removesuffix(".a") if name.endswith(".a") else name
            self._drop(target)
            self.active[(target, "")] = f"linking {name}"
        elif what.startswith("Built target "):
            name = what.split()[-1]
            self._drop(name)
            for path in self.paths:
                if path.name == name:
                    self._built(path)
        self.on_change()

    def _drop(self, target: str) -> None:
        for key in [k for k in self.active if k[0] == target]:
            del self.active[key]

    def _built(self, path: Path) -> None:
        if path in self.announced or not path.exists():
            return
        self.announced.add(path)
        self.on_built(path)


def build_binaries(build: Path, rows: list[Binary], jobs: int, no_build: bool, display=None) -> None:
    """Builds the binaries `rows` need (unless no_build) and waits. With a display (runner.Display),
    the build's progress line heads its status block meanwhile."""
    if not no_build:
        b = Build(build, rows, jobs, on_change=display.refresh if display else None)
        if display:
            display.show_build(b)
        b.start()
        try:
            b.wait()
        finally:
            if display:
                display.hide_build()
    missing = sorted({str(r.path) for r in rows if not r.path.exists()})
    if missing:
        raise SuiteError("not built: " + ", ".join(missing) + " (run without --no-build)")


def build_suite(build: Path, jobs: int, echo, no_build: bool, wanted=None, display=None) -> list[Binary]:
    """Sets up, configures and builds what `wanted(rows)` selects (default: every model binary),
    then returns the selected manifest rows."""
    chosen = prepare_suite(build, echo, no_build, wanted)
    build_binaries(build, chosen, jobs, no_build, display)
    return chosen


def registry_check(build: Path) -> tuple[bool, str]:
    """The mutant.registry ctest: every mutation point in the headers has a row, and back."""
    r = subprocess.run(["ctest", "--test-dir", str(build), "-R", r"^mutant\.registry$", "-V"],
                       capture_output=True, text=True)
    ran = re.search(r"(\d+) tests? failed out of (\d+)", r.stdout)
    ok = r.returncode == 0 and ran is not None and ran.group(2) != "0"
    # check_mutants.cmake's own words: its summary, or each point or row without its pair.
    detail = re.findall(r"mutant registry: [^\n]*|mutation point [^\n]*|models/mutants.tsv names [^\n]*", r.stdout)
    return ok, "\n".join(d.strip() for d in detail) if detail else r.stdout.strip()[-2000:]


# ---------------------------------------------------------------------------------------------
# Running one binary


def fields(line: str) -> tuple[str, dict[str, str]]:
    """'RESULT model=x result=DATA RACE trace=/p' -> ('RESULT', {...}). Values may hold spaces
    (failure kinds do): a value runs until the next ' key='. Quoted values are unquoted."""
    tag, _, rest = line.partition(" ")
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|.*?)(?= \w+=|$)', rest):
        v = m.group(2)
        out[m.group(1)] = v[1:-1] if v.startswith('"') and v.endswith('"') else v
    return tag, out


@dataclass
class Run:
    """One model binary run: its live progress (from stderr) and its results (from stdout)."""

    label: str
    kind: str  # "model" or "mutant"
    argv: list[str]
    model: str = ""  # the model running now
    search: str = ""
    done: int = 0  # iterations done, from Relacy's progress lines
    planned: int = 0  # Relacy's estimate for full/bounded search, exact for random
    started: float = 0.0
    ended: float = 0.0
    results: list[dict] = field(default_factory=list)  # RESULT lines
    failures: list[dict] = field(default_factory=list)  # FAILURE lines (a model failed)
    caught: dict | None = None  # CAUGHT line (a mutant was caught)
    mutant: dict | None = None  # MUTANT line
    errors: list[str] = field(default_factory=list)  # anything else on stderr
    returncode: int | None = None
    timeout: float | None = None  # seconds; then the binary is killed and the run fails
    timed_out: bool = False
    cancelled: bool = False  # killed because the suite stopped (a failed build)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def execute(self) -> "Run":
        self.started = time.monotonic()
        proc = self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            errors="replace")
        if self.cancelled:
            proc.kill()
        reader = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True)
        reader.start()
        timer = threading.Timer(self.timeout, self._kill, args=(proc,)) if self.timeout else None
        if timer:
            timer.start()
        for line in proc.stdout:  # a FAILURE line is followed by Relacy's report: not ours to parse
            tag, kv = fields(line.rstrip("\n"))
            if tag == "RESULT":
                self.results.append(kv)
            elif tag == "FAILURE":
                self.failures.append(kv)
            elif tag == "CAUGHT":
                self.caught = kv
            elif tag == "MUTANT":
                self.mutant = kv
        self.returncode = proc.wait()
        if timer:
            timer.cancel()
        reader.join()
        self.ended = time.monotonic()
        return self

    def _kill(self, proc: subprocess.Popen) -> None:
        self.timed_out = True
        proc.kill()

    def kill(self) -> None:
        """Stops the run (it then counts as cancelled, not as a result)."""
        self.cancelled = True
        if self.proc is not None:
            self.proc.kill()

    def _read_stderr(self, stream) -> None:
        for line in stream:
            tag, kv = fields(line.rstrip("\n"))
            if tag == "START":
                self.model, self.search, self.done, self.planned = kv.get("model", ""), kv.get("search", ""), 0, 0
                if self.search.startswith("random:"):
                    self.planned = int(self.search.split(":")[1])
            elif tag == "PROGRESS":
                m = re.search(r"\((\d+)/(\d+)\)", line)
                if m:
                    self.done, self.planned = int(m.group(1)), int(m.group(2))
            elif line.strip():
                self.errors.append(line.rstrip("\n"))


def mutant_run(b: Binary, trace_dir: Path, extra: list[str] = (), timeout: float | None = None) -> Run:
    return Run(b.name, "mutant", [str(b.path), "--mutant", b.name, "--trace-dir", str(trace_dir), *extra],
               timeout=timeout)


def search_args(search: str | None, bound: int | None, iterations: int | None) -> list[str]:
    out = []
    if search:
        out += ["--search", search]
    if bound is not None:
        out += ["--bound", str(bound)]
    if iterations is not None:
        out += ["--iterations", str(iterations)]
    return out


def default_jobs() -> int:
    return os.cpu_count() or 1


