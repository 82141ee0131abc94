"""tools/runner.py: runs model binaries in parallel and shows what each one is doing.

On a terminal, a block of status lines (the build's progress while it lasts, then one line per
running binary: model, search, iterations done out of planned, seconds) is redrawn in place,
and finished work is printed above it. In a log (CI, a pipe), finished work is printed as it
ends, and a progress line at most every 10 s per binary (and for the build), so a long run is
never silent. Runs may be added while others run (a Pool), so models start as soon as their
binary is built. Python 3 standard library only.
"""
from __future__ import annotations

import heapq
import itertools
import shutil
import sys
import threading
import time

from suite import Run, search_label

LOG_PROGRESS_EVERY = 10.0  # seconds between progress lines when not on a terminal


def count(n: int) -> str:
    return f"{n:,}"


class Display:
    """Serialises output from worker threads; owns the live status block on a terminal."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.running: list[Run] = []
        self.build = None  # a suite.Build while it runs: its status() is the block's first line
        self.drawn = 0  # status lines currently on screen
        self.partial = False  # a transient line is on screen, the cursor after it
        self.last_logged: dict[int, float] = {}

    def log(self, text: str) -> None:
        with self.lock:
            self._erase()
            print(text, file=self.stream, flush=True)
            self._draw()

    def transient(self, text: str) -> None:
        """A line that only matters until the next one (set-up and configure steps): overwritten
        on a terminal, left out of a log (a failed step's output is shown with its error)."""
        if not self.tty:
            return
        width = shutil.get_terminal_size().columns - 1
        with self.lock:
            self.stream.write("\r\x1b[K" + text[:width])
            self.stream.flush()
            self.partial = True

    def build_line(self, line: str) -> None:
        """A line of setup or configure output: kept if it says something lasting."""
        keep = line.startswith(("setup:", "-- Configuring done", "CMake Error", "FAILED", "error"))
        (self.log if keep else self.transient)(line)

    def show_build(self, build) -> None:
        """From now until hide_build, the build's progress line heads the status block."""
        with self.lock:
            self._erase()
            self.build = build
            self.last_logged[id(build)] = time.monotonic()
            self._draw()

    def hide_build(self) -> None:
        with self.lock:
            self._erase()
            self.build = None
            self._draw()

    def end_transient(self) -> None:
        if self.tty:
            with self.lock:
                self._erase()
                self.stream.flush()

    def status(self, run: Run) -> str:
        what = f"{run.label}" if run.kind == "model" else f"mutant {run.label}"
        if run.kind == "mutant" and run.model:
            what += f"  model {run.model}"
        search = search_label(run.search) if run.search else "starting"
        done = f"  {count(run.done)} iterations" if run.done else ""
        # Relacy knows the total of a random search; for full and bounded search it estimates it
        # (and for bounded search its estimate is just "one more"): show only a real estimate.
        if run.planned > run.done + 1:
            est = "" if run.search.startswith("random") else "~"
            done = f"  {count(run.done)} / {est}{count(run.planned)} iterations ({run.done * 100 // run.planned}%)"
        return f"  > {what}  {search}{done}  {run.seconds:.1f} s"

    def refresh(self) -> None:
        with self.lock:
            if self.tty:
                self._erase()
                self._draw()
                return
            now = time.monotonic()
            if self.build is not None and now - self.last_logged.get(id(self.build), now) >= LOG_PROGRESS_EVERY:
                self.last_logged[id(self.build)] = now
                print(self.build.status(), file=self.stream, flush=True)
            for run in self.running:
                last = self.last_logged.setdefault(id(run), now)
                if now - last >= LOG_PROGRESS_EVERY:
                    self.last_logged[id(run)] = now
                    print(self.status(run), file=self.stream, flush=True)

    def _erase(self) -> None:
        if self.partial:
            self.stream.write("\r\x1b[K")
            self.partial = False
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
        self.drawn = 0

    def _draw(self) -> None:
        if not self.tty:
            return
        width = shutil.get_terminal_size().columns - 1
        lines = ([self.build.status()] if self.build is not None else []) + [self.status(r) for r in self.running]
        for line in lines:
            self.stream.write(line[:width] + "\n")
        self.drawn = len(lines)
        self.stream.flush()


class Pool:
    """Runs Runs `jobs` at a time, as they are added (add() may be called while others run):
    the lowest `priority` first, then in the order added. on_done(run) is called serially as
    each finishes. close() says nothing more will come; join() waits for every run and returns
    them in the order added; cancel() drops what has not started and kills what has."""

    def __init__(self, jobs: int, display: Display, on_done):
        self.display, self.on_done = display, on_done
        self.cv = threading.Condition()
        self.queue: list = []  # heap of (priority, sequence number, run)
        self.seq = itertools.count()
        self.added: list[Run] = []
        self.started: list[Run] = []
        self.closed = False
        self.done_lock = threading.Lock()
        self.finished = threading.Event()
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(max(1, jobs))]
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        for t in [*self.workers, self.ticker]:
            t.start()

    def add(self, runs: list[Run], priority=lambda run: 0) -> None:
        with self.cv:
            for run in runs:
                self.added.append(run)
                heapq.heappush(self.queue, (priority(run), next(self.seq), run))
            self.cv.notify_all()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def cancel(self) -> None:
        with self.cv:
            self.queue.clear()
            self.closed = True
            self.cv.notify_all()
            for run in self.started:
                run.kill()

    def join(self) -> list[Run]:
        for t in self.workers:
            t.join()
        self.finished.set()
        self.ticker.join()
        self.display.refresh()
        return [r for r in self.added if r.ended]

    def _work(self) -> None:
        while True:
            with self.cv:
                while not self.queue and not self.closed:
                    self.cv.wait()
                if not self.queue:
                    return
                run = heapq.heappop(self.queue)[2]
                self.started.append(run)
            run.started = time.monotonic()  # before it shows in the status block
            with self.display.lock:
                self.display.running.append(run)
            run.execute()
            with self.display.lock:
                self.display.running.remove(run)
            with self.done_lock:
                self.on_done(run)

    def _tick(self) -> None:
        while not self.finished.wait(0.2):
            self.display.refresh()


def run_all(runs: list[Run], jobs: int, display: Display, on_done) -> list[Run]:
    """Runs every Run, `jobs` at a time, in the order given; on_done(run) is called (serially)
    as each finishes."""
    pool = Pool(jobs, display, on_done)
    pool.add(runs)
    pool.close()
    return pool.join()
