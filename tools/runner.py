"""tools/runner.py: runs model binaries in parallel and shows what each one is doing.

On a terminal, a block of status lines (one per running binary: model, search, iterations done
out of planned, seconds) is redrawn in place, and finished work is printed above it. In a log
(CI, a pipe), finished work is printed as it ends, and a progress line at most every 10 s per
binary, so a long run is never silent. Python 3 standard library only.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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
        self.drawn = 0  # status lines currently on screen
        self.partial = False  # a transient line is on screen, the cursor after it
        self.last_logged: dict[int, float] = {}

    def log(self, text: str) -> None:
        with self.lock:
            self._erase()
            print(text, file=self.stream, flush=True)
            self._draw()

    def transient(self, text: str) -> None:
        """A line that only matters until the next one (build steps): overwritten on a terminal."""
        if not self.tty:
            self.log(text)
            return
        width = shutil.get_terminal_size().columns - 1
        with self.lock:
            self.stream.write("\r\x1b[K" + text[:width])
            self.stream.flush()
            self.partial = True

    def build_line(self, line: str) -> None:
        """A line of setup, configure or build output: kept if it says something lasting."""
        keep = line.startswith(("setup:", "building", "-- Configuring done", "FAILED", "error"))
        (self.log if keep else self.transient)(line)

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
        for run in self.running:
            self.stream.write(self.status(run)[:width] + "\n")
        self.drawn = len(self.running)
        self.stream.flush()


def run_all(runs: list[Run], jobs: int, display: Display, on_done) -> list[Run]:
    """Runs every Run, `jobs` at a time; on_done(run) is called (serially) as each finishes."""
    finished = threading.Event()
    done_lock = threading.Lock()

    def work(run: Run) -> Run:
        run.started = time.monotonic()  # before it shows in the status block
        with display.lock:
            display.running.append(run)
        run.execute()
        with display.lock:
            display.running.remove(run)
        with done_lock:
            on_done(run)
        return run

    def ticker() -> None:
        while not finished.wait(0.2):
            display.refresh()

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(work, runs))
    finally:
        finished.set()
        t.join()
        display.refresh()
    return runs
