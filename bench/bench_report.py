"""The cold-start benchmark's figures and its Markdown report: summaries,
pairwise ratios, machine facts, the method."""
import os
import platform
import socket
import statistics
import subprocess

METHOD = """\
Each workload is started by each contender in turn (A B C A B C ...), {runs} rounds
after {warmups} discarded warm-up rounds, on the same machine in the same run.
Every contender runs the same interpreter, imports and handler (for W4 the same
executable) and must print the same answer as the bare process; a wrong answer
or a failed start counts as a failure, not a time.

- **bare**: the program with no isolation, clean environment (PATH, LANG, HOME, TZ).
- **bubblewrap**: `bwrap --unshare-all` with the same read-only /usr and /etc.
- **crun**, **runc**: an OCI bundle with the same read-only /usr and /etc, a
  read-only root, user (unprivileged uid range), pid, network, ipc, uts, mount
  and cgroup namespaces, no capabilities, the workload's memory as its limit;
  `crun run` / `runc run` in the foreground. crun 1.8 refuses this machine's
  hybrid cgroup layout, so it runs in a mount namespace without the empty
  cgroup2 mount, entered before exec (no extra process).
- **runc restore**: `runc restore` of a CRIU checkpoint (the CRIU thaw uses)
  taken after the program initialized (imports done, handler loaded) and while
  it waited for its event on stdin; timed from spawn until the answer is
  printed and the container has exited. Not for W4, which has no init to keep.
- **thaw cold / restore / warm**: end to end, from the HTTP request to thawd
  until its answer, with the start mode forced by `X-Thaw-Start-Mode`; a new
  instance for cold and restore (user, pid, mount, ipc, uts, net namespaces, a
  cgroup and a seccomp filter), an idle instance for warm. thaw snapshots
  every runtime, W4's `provided` one included (its bootstrap with the Runtime
  API server beside it and the connection between them).

Times are from spawn to exit (processes) or request to answer (thaw), in ms.
The ratio is the median, over rounds, of a contender's time divided by thaw
restore's in the same round (thaw cold's where thaw does not restore the
workload). Peak memory is a memory cgroup's high-water mark in every case
(anonymous memory plus the page cache it was first to touch; file pages of /usr
already cached by someone else are not charged): for thaw the instance's own
cgroup (Max Memory Used in the REPORT line of the timed invocations); for the
other contenders a cgroup their first process joins before exec, holding
bwrap, runc or crun and the containers nested below it, in {peak_runs} extra
untimed starts per contender (joining a cgroup from the benchmark would slow
the spawn the timed rounds measure). thaw's phases
come from its Server-Timing header: sandbox (namespaces, mounts, cgroup; for a
restore the scratch /tmp, pipes and cgroup), init or restore (runtime start to
ready; CRIU and the after-restore hooks), handler, and the rest of the
end-to-end time (HTTP, scheduling, thawd's channel to the runtime).
"""


def summarize(samples):
    if not samples:
        return None
    s = sorted(samples)

    def pick(p):
        return s[min(len(s) - 1, int(p / 100 * len(s)))]
    return {"n": len(s), "p50": statistics.median(s), "p90": pick(90), "p99": pick(99),
            "min": s[0], "max": s[-1]}


def pair_ratios(by_round):
    """Each contender against thaw restore (thaw cold where there is no
    restore), round by round (the two ran back to back), then the median."""
    out = {}
    for key, rounds in by_round.items():
        workload = key.split("|")[0]
        base = by_round.get(workload + "|thaw restore") or by_round.get(workload + "|thaw cold")
        pairs = [rounds[r] / base[r] for r in rounds if base and r in base and base[r] > 0]
        out[key] = statistics.median(pairs) if pairs else None
    return out


def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not available"


def cgroup_layout():
    v1, v2 = [], []
    with open("/proc/mounts") as f:
        for line in f:
            _, path, fstype, opts = line.split()[:4]
            if fstype == "cgroup":
                v1 += [o for o in opts.split(",") if o in (
                    "memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "freezer", "devices")]
            elif fstype == "cgroup2":
                v2.append(path)
    if v1 and v2:
        return "hybrid: v1 controllers (%s), cgroup2 at %s" % (",".join(sorted(set(v1))),
                                                               ", ".join(v2))
    return "v1 (%s)" % ",".join(sorted(set(v1))) if v1 else "v2 at " + ", ".join(v2)


def machine_facts(thawd_binary, criu):
    facts = {"host": socket.gethostname(), "kernel": platform.release()}
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    facts["cpu"] = "%d x %s" % (len(models), models[0] if models else "?")
    with open("/proc/meminfo") as f:
        facts["memory"] = "%d MiB" % (int(f.readline().split()[1]) // 1024)
    facts["cgroups"] = cgroup_layout()
    facts["criu"] = _first_line([criu, "--version"]) if criu else "not available"
    facts["runc"] = _first_line(["runc", "--version"])
    facts["crun"] = _first_line(["crun", "--version"])
    facts["bubblewrap"] = _first_line(["bwrap", "--version"])
    facts["thawd --version"] = subprocess.run([thawd_binary, "--version"], capture_output=True,
                                              text=True).stdout.strip()
    return facts


def _phase_rows(report, workloads):
    rows = []
    for w in workloads:
        for mode in ("cold", "restore", "warm"):
            per = report["thaw_phases_ms"].get("%s|thaw %s" % (w.name, mode))
            if not per:
                continue
            p50 = {k: statistics.median(v) for k, v in per.items()}
            start = p50.get("init", p50.get("restore"))
            rows.append("| %s | %s | %s | %s | %.1f | %.1f |" % (
                w.name, mode, "%.1f" % p50["sandbox"] if "sandbox" in p50 else "-",
                "%.1f" % start if start is not None else "-", p50.get("handler", 0),
                p50.get("http and thawd", 0)))
    return rows


def write_markdown(out, report, workloads):
    s = report["summary"]
    lines = ["# thaw cold-start benchmark", "", "## Machine", ""]
    lines += ["- %s: %s" % (k, v.replace("\n", "; ")) for k, v in report["facts"].items()]
    lines += ["", "## Method", "", METHOD.format(runs=report["runs"], warmups=report["warmups"],
                                            peak_runs=report["peak_runs"])]
    lines += ["## Results (ms)", "",
              "| workload | contender | n | p50 | p90 | p99 | min | max | vs thaw restore "
              "| peak memory MB (p50) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in workloads:
        for key in (k for k in report["contender_order"] if k.startswith(w.name + "|")):
            v = s.get(key)
            if not v:
                continue
            r = report["ratio_to_restore"].get(key)
            peak = report["peak_memory_mb"].get(key)
            lines.append("| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %s |" % (
                w.name, key.split("|")[1], v["n"], v["p50"], v["p90"], v["p99"], v["min"],
                v["max"], "%.2fx" % r if r else "n/a", "%.1f" % peak if peak else "n/a"))
    lines += ["", "## Where thaw's time goes (p50, ms, from Server-Timing)", "",
              "| workload | start mode | sandbox | init or restore | handler | HTTP and thawd |",
              "| --- | --- | ---: | ---: | ---: | ---: |"] + _phase_rows(report, workloads)
    lines += ["", "## Memory per idle instance (its cgroup's usage, median)", "",
              "| workload and how it started | instances | MB |", "| --- | ---: | ---: |"]
    for k, v in sorted(report["idle_instance_memory_mb"].items()):
        lines.append("| %s | %d | %.1f |" % (k.replace("|", ", "), v["n"], v["median_mb"]))
    lines += ["", "## New instances per second from restores (forced, concurrent clients)", "",
              "| workload | clients | restores/s |", "| --- | ---: | ---: |"]
    for w, by_clients in report["restores_per_second"].items():
        for c, rate in by_clients.items():
            lines.append("| %s | %s | %.1f |" % (w, c.split()[0], rate))
    lines += ["", "## Failures", ""]
    if not report["failures"]:
        lines.append("none")
    for key, count in sorted(report["failures"].items()):
        lines.append("- %s: %d (%s)" % (key.replace("|", ", "), count,
                                        report["failure_reasons"].get(key, "")))
    for key, why in sorted(report["not_run"].items()):
        lines.append("- %s not run: %s" % (key.replace("|", ", "), why))
    lines += ["", "![medians](medians.svg)", "", "![distributions](distributions.svg)", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
