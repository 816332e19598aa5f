#!/usr/bin/env python3
"""The cold-start benchmark: each workload started by each contender,
interleaved (A B C A B C ...), warm-ups discarded, every answer checked.

Contenders: the bare process, bubblewrap, crun, runc, runc restoring a CRIU
checkpoint, and thaw's three start modes end to end through thawd's HTTP API.
Writes raw samples (JSON), a Markdown report and SVG plots to
bench/results/<date>-<host>/. The method is written at the top of the report
(bench_report.METHOD).

    bench/cold_start.py [--runs N] [--quick] [--out DIR] [--contenders LIST]
                                                       (run by scripts/bench)
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import bench_report
from memory_cgroup import MemoryCgroup
from oci import OciRuntimes, timed
from thawd_client import Thawd, idle_instance_memory, restore_throughput
from workloads import ROOT, WORKLOADS, code_dir, normalized, program

CONTENDERS = ["bare", "bubblewrap", "crun", "runc", "runc restore", "thaw cold",
              "thaw restore", "thaw warm"]

# What a function's process gets in thaw too: no host settings that change how
# an interpreter starts (NODE_EXTRA_CA_CERTS, PYTHONPATH, ... of whoever runs this).
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TZ": "UTC"}


def thaw_restores(workload):
    """Whether thaw snapshots the workload's runtime (all three runtimes now)."""
    return workload.runtime in ("python3.11", "nodejs20.x", "provided")


def bwrap_argv(inner, code):
    """bubblewrap with all namespaces unshared and the same read-only /usr."""
    return ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
            "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--ro-bind", code, "/var/task"] + inner


class Run:
    """One benchmark run: the contenders, what they need, what they measured."""

    def __init__(self, args, workloads, work):
        self.workloads = workloads
        self.build = os.path.dirname(os.path.dirname(args.thawd))
        self.criu = shutil.which("criu", path="/usr/local/sbin:/usr/sbin:/usr/bin")
        self.oci = OciRuntimes(work, CLEAN_ENV, self.criu)
        self.thawd = Thawd(work, args.thawd, "thaw-bench-%d" % os.getpid())
        self.samples, self.by_round, self.peaks, self.phases = {}, {}, {}, {}
        self.failures, self.failure_reasons, self.not_run = {}, {}, {}
        self.checkpoints = {}
        self.contenders = args.contenders

    def prepare(self):
        for i, w in enumerate(self.workloads):
            self.thawd.deploy("w%d" % i, w, self.build)
        missing = self.oci.missing()
        for i, w in enumerate(self.workloads):
            if thaw_restores(w):
                deadline = time.time() + 120
                while not self.thawd.snapshot_ready("w%d" % i) and time.time() < deadline:
                    time.sleep(0.2)
            waiting = program(w, "/var/task", event_on_stdin=True)
            if missing:
                for c in ("crun", "runc", "runc restore"):
                    self.not_run["%s|%s" % (w.name, c)] = "not installed: " + ", ".join(missing)
            elif waiting and "runc restore" in self.contenders:
                bundle = self.oci.bundle((i, "stdin"), waiting, code_dir(w, self.build),
                                         w.memory_mb)
                try:
                    self.checkpoints[i] = (bundle, self.oci.checkpoint(bundle))
                except RuntimeError as e:
                    self.not_run["%s|runc restore" % w.name] = str(e)[:300]
        self.expected = {}
        for w in self.workloads:
            _, answer, err = timed(program(w, code_dir(w, self.build)), CLEAN_ENV)
            if answer is None:
                raise SystemExit("cold_start: %s fails as a bare process: %s" % (w.name, err))
            self.expected[w.name] = normalized(answer)

    def applies(self, i, w, contender):
        key = "%s|%s" % (w.name, contender)
        if contender not in self.contenders or key in self.not_run:
            return False
        if contender == "runc restore":
            return i in self.checkpoints
        if contender == "thaw restore":
            return thaw_restores(w)
        return True

    def start_process(self, i, w, contender, cgroup=None):
        """A process contender once: (ms, answer or None, stderr). With a
        MemoryCgroup, everything it starts is charged to that cgroup."""
        code = code_dir(w, self.build)
        join = cgroup.joiner() if cgroup else None
        # Containers nest below the measuring cgroup, or get their own.
        nested = "/%s/ctr" % cgroup.path if cgroup else None
        if contender == "bare":
            return timed(program(w, code), CLEAN_ENV, preexec_fn=join)
        if contender == "bubblewrap":
            return timed(bwrap_argv(program(w, "/var/task"), code), CLEAN_ENV, preexec_fn=join)
        if contender in ("crun", "runc"):
            bundle = self.oci.bundle((i, "argv", nested), program(w, "/var/task"), code,
                                     w.memory_mb, nested)
            return self.oci.run(contender, bundle, join)
        images = self.checkpoints[i][1]
        bundle = self.oci.bundle((i, "stdin", nested), program(w, "/var/task", True), code,
                                 w.memory_mb, nested)
        return self.oci.restore(bundle, images, w.event, join)

    def measure(self, i, w, contender):
        """(ms, answer or None, peak MB, thaw's phases, why it failed)."""
        if contender.startswith("thaw"):
            return self.thawd.invoke("w%d" % i, w.event, contender.split()[1])
        ms, answer, err = self.start_process(i, w, contender)
        return ms, answer, None, {}, err

    def process_peaks(self, runs):
        """Peak memory of the process contenders, from `runs` untimed starts
        each in a memory cgroup of its own (joining one would slow the spawn
        that the timed rounds measure)."""
        for i, w in enumerate(self.workloads):
            for c in CONTENDERS:
                if c.startswith("thaw") or not self.applies(i, w, c):
                    continue
                for n in range(runs):
                    cgroup = MemoryCgroup("%s/mem-%d-%s-%d" % (
                        self.oci.cgroup_parent, i, c.replace(" ", "-"), n))
                    try:
                        _, answer, _ = self.start_process(i, w, c, cgroup)
                        peak = cgroup.peak_mb()
                    finally:
                        cgroup.remove()
                    if answer is not None and peak:
                        self.peaks.setdefault("%s|%s" % (w.name, c), []).append(peak)

    def round(self, run):
        for i, w in enumerate(self.workloads):
            for c in CONTENDERS:
                if not self.applies(i, w, c):
                    continue
                ms, answer, peak, phases, why = self.measure(i, w, c)
                if run < 0:
                    continue
                key = "%s|%s" % (w.name, c)
                # A wrong answer is a failure, not a time.
                try:
                    right = answer is not None and normalized(answer) == self.expected[w.name]
                except ValueError:
                    right = False
                if not right:
                    self.failures[key] = self.failures.get(key, 0) + 1
                    self.failure_reasons.setdefault(
                        key, (why or "wrong answer: %r" % (answer or ""))[-300:].strip())
                    continue
                self.samples.setdefault(key, []).append(ms)
                self.by_round.setdefault(key, {})[run] = ms
                if peak:
                    self.peaks.setdefault(key, []).append(peak)
                for phase, v in phases.items():
                    self.phases.setdefault(key, {}).setdefault(phase, []).append(v)

    def close(self):
        try:
            self.thawd.stop()
        finally:
            self.oci.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    ap.add_argument("--out", default=None)
    ap.add_argument("--thawd", default=os.path.join(ROOT, "build", "invoker", "thawd"))
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help="comma-separated subset, e.g. 'thaw cold,thaw restore,thaw warm'"
                    " (the others interleaved between thaw's starts change its figures)")
    args = ap.parse_args()
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown or not args.contenders:
        ap.error("--contenders: unknown %s; choose from %s" % (unknown, ", ".join(CONTENDERS)))
    runs, warmups = (5, 1) if args.quick else (args.runs, 3)
    peak_runs = 2 if args.quick else 5
    # --quick leaves out pandas, the slowest workload.
    workloads = [w for w in WORKLOADS if not (args.quick and "pandas" in w.name)]
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    out = args.out or os.path.join(ROOT, "bench", "results",
                                   "%s-%s" % (stamp, socket.gethostname()))
    os.makedirs(out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="thaw-coldstart-")
    os.chmod(work, 0o755)  # containers' unprivileged root reads bundles below it
    bench = None
    try:
        bench = Run(args, workloads, work)
        bench.prepare()
        for run in range(-warmups, runs):
            sys.stderr.write("\rcold_start: round %d of %d%s " % (
                run + warmups + 1, runs + warmups, " (warm-up)" if run < 0 else ""))
            sys.stderr.flush()
            bench.round(run)
        sys.stderr.write("\n")
        bench.process_peaks(peak_runs)
        idle_mb = idle_instance_memory(bench.thawd, workloads)
        throughput = restore_throughput(bench.thawd, workloads, thaw_restores,
                                        3 if args.quick else 10)
    finally:
        if bench:
            bench.close()
        shutil.rmtree(work, ignore_errors=True)

    report = {"facts": bench_report.machine_facts(args.thawd, bench.criu), "runs": runs,
              "warmups": warmups, "peak_runs": peak_runs, "samples_ms": bench.samples,
              "contender_order": ["%s|%s" % (w.name, c) for w in workloads for c in CONTENDERS
                                  if c in args.contenders],
              "failures": bench.failures, "failure_reasons": bench.failure_reasons,
              "not_run": bench.not_run,
              "summary": {k: bench_report.summarize(v) for k, v in bench.samples.items()},
              "ratio_to_restore": bench_report.pair_ratios(bench.by_round),
              "peak_memory_mb": {k: sorted(v)[len(v) // 2] for k, v in bench.peaks.items()},
              "thaw_phases_ms": bench.phases,
              "idle_instance_memory_mb": idle_mb, "restores_per_second": throughput}
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump(report, f, indent=1)
    bench_report.write_markdown(out, report, workloads)
    # matplotlib is Debian's (python3-matplotlib), installed for Debian's
    # interpreter: the plots are drawn by it, whichever python3 runs this.
    subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "plots.py"), out],
                   check=True)
    print(os.path.join(out, "report.md"))
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
