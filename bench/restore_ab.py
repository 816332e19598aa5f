#!/usr/bin/env python3
"""Two thawd builds compared on forced restores of one workload, taking turns
(A B, then B A, ...) so that both see the same phases of the machine and
neither always goes first: a change to the restore path measured against the
build before it. Each thawd has its own state directory and cgroup parent;
both run for the whole comparison.

  bench/restore_ab.py --a /path/to/old/build/invoker/thawd \\
                      --b build/invoker/thawd --workload pandas --runs 40
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from bench_report import summarize
from thawd_client import Thawd
from workloads import WORKLOADS


def pick(name):
    found = [w for w in WORKLOADS if name.lower() in w.name.lower()]
    if len(found) != 1:
        raise SystemExit("restore_ab: --workload %r matches %d of: %s" % (
            name, len(found), ", ".join(w.name for w in WORKLOADS)))
    return found[0]


def build_dir_of(thawd):
    return os.path.dirname(os.path.dirname(os.path.abspath(thawd)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="thawd binary A (the baseline)")
    ap.add_argument("--b", required=True, help="thawd binary B (the change)")
    ap.add_argument("--workload", default="pandas", help="part of a workload's name")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--pause", type=float, default=0.4, help="seconds between restores")
    ap.add_argument("--keep-alive", type=int, default=None,
                    help="both thawds' --keep-alive, seconds (default: thawd's own)")
    args = ap.parse_args()
    for binary in (args.a, args.b):
        if not os.access(binary, os.X_OK):
            raise SystemExit("restore_ab: %s is not an executable thawd" % binary)
    w = pick(args.workload)
    work = tempfile.mkdtemp(prefix="thaw-ab-")
    extra = ["--keep-alive", str(args.keep_alive)] if args.keep_alive else []
    thawds = {}
    samples = {"A": {}, "B": {}}  # run -> ms
    failures = {"A": 0, "B": 0}
    try:
        for label, binary in (("A", args.a), ("B", args.b)):
            os.makedirs(os.path.join(work, label))
            thawds[label] = Thawd(os.path.join(work, label), binary,
                                  "thaw-ab-%d-%s" % (os.getpid(), label), extra)
            thawds[label].deploy("f", w, build_dir_of(binary))
        for label, thawd in thawds.items():
            deadline = time.time() + 120
            while not thawd.snapshot_ready("f"):
                if time.time() > deadline:
                    raise SystemExit("restore_ab: no snapshot in thawd %s after 120 s" % label)
                time.sleep(0.2)
        for run in range(-3, args.runs):  # 3 warm-ups each
            for label in ("A", "B") if run % 2 == 0 else ("B", "A"):
                time.sleep(args.pause)
                ms, answer, _, _, why = thawds[label].invoke("f", w.event, "restore")
                if answer is None:
                    failures[label] += 1
                    print("restore_ab: %s: %s" % (label, why), file=sys.stderr)
                elif run >= 0:
                    samples[label][run] = ms
    finally:
        for thawd in thawds.values():
            try:
                thawd.stop()
            except Exception as e:  # the other one is stopped all the same
                print("restore_ab: stopping a thawd: %s" % e, file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    print("Forced restores of %s, A and B taking turns, %.1f s apart, %d runs each (ms)\n" % (
        w.name, args.pause, args.runs))
    print("| thawd | p50 | p90 | min | failures |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, binary in (("A", args.a), ("B", args.b)):
        s = summarize(list(samples[label].values())) or {"p50": 0, "p90": 0, "min": 0}
        print("| %s %s | %.1f | %.1f | %.1f | %d |" % (
            label, binary, s["p50"], s["p90"], s["min"], failures[label]))
    # Pairs of one run only, where both answered.
    pairs = [samples["B"][run] - a for run, a in samples["A"].items() if run in samples["B"]]
    if pairs:
        print("\nB - A, median of %d pairs: %+.1f ms" % (len(pairs), statistics.median(pairs)))
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
