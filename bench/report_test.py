#!/usr/bin/env python3
"""bench/report_test.py (ctest unit.bench_report): the scaling tables' verdicts (bench/report.py
scaling_targets) flip exactly at the targets and at the tie margins, and the reference rows ("no
lock") are never taken for peers. Synthetic figures, no benchmark run; well under a second."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

OURS = "lockstep::mutex"


def figure(ops, fair):
    return {"ops": {"median": ops}, "fair": {"median": fair}}


def data(ours_ops, ours_fair, peer_ops=10e6, std_fair=0.5, at=None, std=True):
    """Both lock groups at 4, 8 and 16 threads; the best peer is "futex mutex, no owner". The
    figures under test are set at thread count `at` only (all three if None); the other counts
    get figures that are met by a wide margin, so a lookup at the wrong count shows."""
    group = {OURS: {}, "lockstep::interprocess_mutex": {}, "std::mutex": {}, "futex mutex, no owner": {},
             report.NO_LOCK: {}, report.NO_LOCK + ", shared atomic counter": {}}
    for n in (4, 8, 16):
        chosen = at is None or n == at
        group[OURS][n] = figure(ours_ops if chosen else 3 * peer_ops, ours_fair if chosen else 1.0)
        group["lockstep::interprocess_mutex"][n] = figure(100 * peer_ops, 0.0)  # ours: never a peer
        if std:
            group["std::mutex"][n] = figure(peer_ops / 2, std_fair if chosen else 0.1)
        group["futex mutex, no owner"][n] = figure(peer_ops if chosen else peer_ops / 3, 0.0)
        group[report.NO_LOCK][n] = figure(1000 * peer_ops, 1.0)  # reference rows: far ahead, never peers
        group[report.NO_LOCK + ", shared atomic counter"][n] = figure(100 * peer_ops, 1.0)
    return {"scaling_tight": group, "scaling_moderate": group}


def verdicts(d):
    goals = report.scaling_targets(d)
    assert len(goals) == 6, goals
    return {g["met"] for g in goals}


def by_count(d):
    return [g["met"] for g in report.scaling_targets(d)]


def main():
    t, f = report.TIE_THROUGHPUT, report.TIE_FAIRNESS
    eps = 1e-6
    assert verdicts(data(10e6, 0.5)) == {True}, "equal to the best peer and to std's fairness is met"
    assert verdicts(data(10e6 * (1 - t) + 1, 0.5)) == {"tie"}, "within the throughput margin is a tie"
    assert verdicts(data(10e6 * (1 - t) - 1, 0.5)) == {False}, "beyond the throughput margin is not met"
    assert verdicts(data(10e6, 0.5 - f + eps)) == {"tie"}, "within the fairness margin is a tie"
    assert verdicts(data(10e6, 0.5 - f - eps)) == {False}, "beyond the fairness margin is not met"
    assert verdicts(data(20e6, 0.5 - f - eps)) == {False}, "throughput does not buy fairness"
    assert verdicts(data(10e6 * (1 - t) - 1, 0.9)) == {False}, "fairness does not buy throughput"
    for i, n in enumerate((4, 8, 16)):  # each row judged on its own thread count
        got = by_count(data(10e6 * (1 - t) - 1, 0.5, at=n))
        assert got[i] is False and got[i + 3] is False and got.count(True) == 4, (n, got)
    assert verdicts(data(10e6, 0.9, std=False)) == {None}, "without std::mutex, fairness is not measured"
    print("bench_report: scaling verdicts flip at the targets and at the tie margins; reference rows are no peers")


if __name__ == "__main__":
    main()
