#!/usr/bin/env python3
"""Restores one at a time: each workload thaw snapshots gets N forced restores
through thawd's HTTP API, with a pause between them, and nothing else running.
This is a cold start as a user meets it on a quiet host; cold_start.py instead
interleaves every contender, whose starts and teardowns overlap thaw's on the
two cores and change its figures.

    bench/restore_series.py [--runs N] [--pause S] [--keep-alive S] [--warm-memory-mb MB]
                            [--criu-spares N] [--thawd PATH]

By default every restored instance stays idle (thawd's keep-alive is 600 s), so
each restore needs memory no process used before. In a VM whose host backs
guest memory on first touch (and takes back what the guest frees, as free page
reporting does here), that costs pandas' 41 MB restore about as much as CRIU
itself. With --keep-alive 1 and a pause above it, each instance is gone before
the next restore, which then reuses the memory it freed.

Prints, per workload, p50 and p99 from request to answer, Server-Timing's
phases and the restore's phases from thawd's log (prepare, criu, resume).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from bench_report import summarize
from cold_start import thaw_restores
from thawd_client import Thawd
from workloads import ROOT, WORKLOADS


def restore_phases(log_path):
    """instance id -> {prepare_ms, criu_ms, resume_ms} from thawd's log."""
    out = {}
    with open(log_path) as f:
        for line in f:
            if '"restore_phases"' in line:
                e = json.loads(line)
                out[e["instance"]] = {k: e[k] for k in ("prepare_ms", "criu_ms", "resume_ms")}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between restores")
    ap.add_argument("--keep-alive", type=int, default=None, help="thawd's --keep-alive, seconds")
    ap.add_argument("--warm-memory-mb", type=int, default=None,
                    help="thawd's --warm-memory-mb (default: thawd's own, 256)")
    ap.add_argument("--criu-spares", type=int, default=None,
                    help="thawd's --criu-spares (default: thawd's own, 4; 0: criu starts "
                         "at each restore, to measure what the criu started ahead saves)")
    ap.add_argument("--thawd", default=os.path.join(ROOT, "build", "invoker", "thawd"))
    args = ap.parse_args()
    workloads = [w for w in WORKLOADS if thaw_restores(w)]
    work = tempfile.mkdtemp(prefix="thaw-series-")
    extra = ["--keep-alive", str(args.keep_alive)] if args.keep_alive else []
    if args.warm_memory_mb is not None:
        extra += ["--warm-memory-mb", str(args.warm_memory_mb)]
    if args.criu_spares is not None:
        extra += ["--criu-spares", str(args.criu_spares)]
    thawd = Thawd(work, args.thawd, "thaw-series-%d" % os.getpid(), extra)
    results = {}
    try:
        build = os.path.dirname(os.path.dirname(args.thawd))
        for i, w in enumerate(workloads):
            thawd.deploy("w%d" % i, w, build)
        for i, w in enumerate(workloads):
            deadline = time.time() + 120
            while not thawd.snapshot_ready("w%d" % i):
                if time.time() > deadline:
                    raise SystemExit("restore_series: no snapshot of %s after 120 s" % w.name)
                time.sleep(0.2)
            samples, phases, failures = [], {}, 0
            for run in range(-3, args.runs):  # 3 warm-ups
                time.sleep(args.pause)
                ms, answer, _, timing, why = thawd.invoke("w%d" % i, w.event, "restore")
                if answer is None:
                    failures += 1
                    print("restore_series: %s: %s" % (w.name, why), file=sys.stderr)
                    continue
                if run >= 0:
                    samples.append(ms)
                    for k, v in timing.items():
                        phases.setdefault(k, []).append(v)
            results[w.name] = (samples, phases, failures)
    finally:
        thawd.stop()
    criu = {}
    for phase in restore_phases(thawd.log.name).values():
        for k, v in phase.items():
            criu.setdefault(k, []).append(v)
    shutil.rmtree(work, ignore_errors=True)

    print("Forced restores through thawd's HTTP API, one at a time, %.1f s apart, "
          "%d runs each, keep-alive %s, warm memory %s, criu spares %s (ms)\n" % (
              args.pause, args.runs, "%d s" % args.keep_alive if args.keep_alive else "default",
              "default" if args.warm_memory_mb is None else "%d MiB" % args.warm_memory_mb,
              "default" if args.criu_spares is None else str(args.criu_spares)))
    print("| workload | p50 | p99 | min | sandbox | restore | handler | HTTP and thawd | failures |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (samples, phases, failures) in results.items():
        s = summarize(samples) or {"p50": 0, "p99": 0, "min": 0}
        med = {k: summarize(v)["p50"] for k, v in phases.items()}
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d |" % (
            name, s["p50"], s["p99"], s["min"], med.get("sandbox", 0), med.get("restore", 0),
            med.get("handler", 0), med.get("http and thawd", 0), failures))
    print("\nRestore phases over all workloads' restores, p50 (ms): " + ", ".join(
        "%s %.1f" % (k, summarize(v)["p50"]) for k, v in sorted(criu.items())))
    return 1 if any(r[2] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
