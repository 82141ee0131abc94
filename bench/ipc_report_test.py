#!/usr/bin/env python3
"""bench/ipc_report_test.py (ctest unit.ipc_report): bench/ipc_report.py's verdicts flip exactly at
the issue-14 thresholds, a peer's "n/a: why" reaches its cell, and a real failure stops the
report. Synthetic Google Benchmark JSON, no benchmark run; well under a second."""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipc_report  # noqa: E402

CH, IP, MQ = ipc_report.CHANNEL, ipc_report.IN_PLACE, ipc_report.MQ


def bench(name, error=None, **counters):
    b = {"name": name, "run_name": name, "run_type": "iteration", "label": "cap", **counters}
    if error:
        b.update(error_occurred=True, error_message=error)
    return b


def doc(channel_64, pipe_64, rtt_p50, in_place_16k, memcpy_16k, mq, posix, boost, idle):
    b = [bench(f"ipc_throughput/{CH}/64 B", msgs_per_s=channel_64, bytes_per_s=64 * channel_64,
               sender_cpu_ns=1, receiver_cpu_ns=1),
         bench(f"ipc_throughput/pipe/64 B", msgs_per_s=pipe_64, bytes_per_s=64 * pipe_64, sender_cpu_ns=1,
               receiver_cpu_ns=1),
         bench(f"ipc_throughput/{IP}/16 KiB", msgs_per_s=in_place_16k / 16384, bytes_per_s=in_place_16k,
               sender_cpu_ns=1, receiver_cpu_ns=1),
         bench("ipc_throughput/POSIX mq/16 KiB", error="n/a: message above fs.mqueue.msgsize_max"),
         bench("ipc_memcpy/16 KiB", bytes_per_second=memcpy_16k),
         bench(f"ipc_roundtrip/{CH}/active", p50_ns=rtt_p50, p99_ns=2 * rtt_p50, real_time=rtt_p50),
         bench(f"ipc_idle/{CH}", cpu_percent=idle), bench(f"ipc_idle/{MQ}", cpu_percent=idle)]
    for s, v in ((MQ, mq), ("POSIX mq", posix), ("boost::interprocess::message_queue", boost)):
        b.append(bench(f"ipc_throughput/{s}/64 B", msgs_per_s=v, bytes_per_s=64 * v, sender_cpu_ns=1,
                       receiver_cpu_ns=1))
    return {"context": {}, "benchmarks": b}


def verdicts(d):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(d, f)
    try:
        r = ipc_report.build(f.name)
    finally:
        os.unlink(f.name)
    return {g["target"]: g["met"] for g in r["goals"]}, "\n".join(r["md"])


def main():
    at = dict(channel_64=10e6, pipe_64=10e6 / 3.5, rtt_p50=1e3, in_place_16k=50e9, memcpy_16k=100e9,
              mq=5e6, posix=1e6, boost=5e6 / 3, idle=0.99)
    met, md = verdicts(doc(**at))
    assert len(met) == 8 and all(met.values()), met
    assert "n/a (message above fs.mqueue.msgsize_max)" in md, "an n/a peer's reason is missing from its cell"
    missed, _ = verdicts(doc(channel_64=9.9e6, pipe_64=10e6 / 3.4, rtt_p50=1.01e3, in_place_16k=49e9,
                             memcpy_16k=100e9, mq=4.9e6, posix=1e6, boost=4.9e6 / 2.9, idle=1.0))
    assert len(missed) == 8 and not any(missed.values()), missed
    broken = doc(**at)
    broken["benchmarks"].append(bench("ipc_idle/pipe", error="bench: a peer process failed"))
    try:
        verdicts(broken)
    except SystemExit:
        pass
    else:
        raise AssertionError("a failed figure did not stop the report")
    print("ipc_report: verdicts flip at every threshold; n/a and failures handled")


if __name__ == "__main__":
    main()
