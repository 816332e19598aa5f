#!/usr/bin/env python3
"""The cold-start benchmark: each workload started by each contender,
interleaved (A B C A B C ...), warm-ups discarded, every answer checked.

Contenders: the bare process (no isolation), bubblewrap with every namespace
unshared, and thaw's three start modes end to end through thawd's HTTP API
(cold, restore, warm, forced with X-Thaw-Start-Mode). Writes raw samples
(JSON), a Markdown report and SVG plots to bench/results/<date>-<host>/.

    bench/cold_start.py [--runs N] [--quick] [--out DIR]   (run by scripts/bench)
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from io import BytesIO

import svg_plots

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "images", "examples")
PYTHON = "/usr/bin/python3.11"
NODE = "/usr/bin/node"

# name, example, runtime, handler, memory, event, the bare program
WORKLOADS = [
    ("W1 Python stdlib", "python-hello", "python3.11", "handler.handler", 256, {"name": "b"}),
    ("W2 Python pandas", "python-pandas", "python3.11", "handler.handler", 1024,
     {"values": [1, 2, 3]}),
    ("W3 Node.js http+crypto", "node-hello", "nodejs20.x", "index.handler", 256, {"name": "b"}),
]


def bare_argv(workload, code_dir):
    """The same interpreter, imports and handler, with no isolation at all."""
    _, _, runtime, handler, _, event = workload
    module, function = handler.rsplit(".", 1)
    payload = json.dumps(event)
    if runtime == "python3.11":
        return [PYTHON, "-c",
                "import json,sys; sys.path.insert(0, %r); import %s as m; "
                "print(json.dumps(m.%s(json.loads(%r), None), separators=(',', ':')))"
                % (code_dir, module, function, payload)]
    return [NODE, "-e",
            "Promise.resolve(require(%r).%s(%s)).then(r => console.log(JSON.stringify(r)))"
            % (os.path.join(code_dir, module + ".js"), function, payload)]


def bwrap_argv(workload, code_dir):
    """bubblewrap with all namespaces unshared and the same read-only /usr."""
    inner = bare_argv(workload, "/var/task")
    return ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
            "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--ro-bind", code_dir, "/var/task"] + inner


def normalized(text):
    return json.dumps(json.loads(text), sort_keys=True)


# What a function's process gets in thaw too: no host settings that change how
# an interpreter starts (NODE_EXTRA_CA_CERTS, PYTHONPATH, ... of whoever runs this).
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TZ": "UTC"}


def run_process(argv):
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, out.stdout.strip() if out.returncode == 0 else None


class Thawd:
    """A thawd of this checkout on a free port, with its own state and cgroup parent."""

    def __init__(self, work, binary):
        self.state = os.path.join(work, "state")
        self.log = open(os.path.join(work, "thawd.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0",
             "--state-dir", self.state, "--cgroup-parent", "thaw-bench-%d" % os.getpid(),
             "--max-concurrency", "16", "--memory-budget-mb", "200000"],
            stderr=self.log)
        self.port = None
        for _ in range(400):
            with open(self.log.name) as f:
                m = re.search(r'"event":"listening".*?"port":(\d+)|"port":(\d+).*"event":"listening"',
                              f.read())
            if m:
                self.port = int(m.group(1) or m.group(2))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            raise SystemExit("cold_start: thawd did not start: " + open(self.log.name).read())
        with open(os.path.join(self.state, "admin-token")) as f:
            self.token = f.read().strip()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(self, method, path, body=b"", headers=None):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers or {})
        self.conn.request(method, path, body, h)
        r = self.conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def deploy(self, name, workload):
        _, example, runtime, handler, memory, _ = workload
        buf = BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in sorted(os.listdir(os.path.join(EXAMPLES, example))):
                p = os.path.join(EXAMPLES, example, f)
                if os.path.isfile(p):
                    z.write(p, f)
        import base64
        body = {"FunctionName": name, "Runtime": runtime, "Handler": handler,
                "MemorySize": memory, "Timeout": 60,
                "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}}
        status, _, text = self.call("POST", "/2015-03-31/functions", json.dumps(body))
        if status != 201:
            raise SystemExit("cold_start: deploy %s: %s" % (name, text))

    def snapshot_ready(self, name):
        _, _, text = self.call("GET", "/thaw/v1/snapshots")
        return any(s["FunctionName"] == name for s in json.loads(text)["Snapshots"])

    def invoke(self, name, event, mode):
        start = time.perf_counter()
        status, headers, text = self.call(
            "POST", "/2015-03-31/functions/%s/invocations" % name, json.dumps(event),
            {"X-Thaw-Start-Mode": mode})
        elapsed = (time.perf_counter() - start) * 1000
        ok = status == 200 and "X-Amz-Function-Error" not in headers and \
            headers.get("X-Thaw-Start-Mode") == mode
        return elapsed, text.decode() if ok else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def memory_cgroup_dir():
    with open("/proc/mounts") as f:
        for line in f:
            dev, path, fstype, opts = line.split()[:4]
            if fstype == "cgroup" and "memory" in opts.split(","):
                return path, "memory.usage_in_bytes"
    return "/sys/fs/cgroup", "memory.current"


def idle_instance_memory(thawd, workloads):
    """Memory each idle instance's cgroup holds, median per workload (MB)."""
    root, name = memory_cgroup_dir()
    _, _, text = thawd.call("GET", "/thaw/v1/instances")
    per = {}
    for inst in json.loads(text)["Instances"]:
        if inst["State"] != "Idle":
            continue
        path = os.path.join(root, "thaw-bench-%d" % os.getpid(), inst["Id"], name)
        try:
            with open(path) as f:
                mb = int(f.read()) / 1048576
        except OSError:
            continue
        w = workloads[int(inst["FunctionName"][1:])][0]
        per.setdefault("%s|thaw %s" % (w, inst["StartMode"]), []).append(mb)
    return {k: {"n": len(v), "median_mb": statistics.median(v)} for k, v in per.items()}


def restore_throughput(thawd, workloads, seconds):
    """New instances per second that forced restores sustain, with 1, 2 and 4
    clients at once (2 cores), for the first snapshotted workload."""
    import threading
    index = next((i for i, w in enumerate(workloads) if w[2] == "python3.11"), None)
    if index is None:
        return {}
    out = {}
    for clients in (1, 2, 4):
        counts = [0] * clients
        end = time.perf_counter() + seconds

        def loop(k):
            t = Thawd.__new__(Thawd)
            t.token, t.port = thawd.token, thawd.port
            t.conn = http.client.HTTPConnection("127.0.0.1", thawd.port, timeout=120)
            while time.perf_counter() < end:
                ms, answer = t.invoke("w%d" % index, workloads[index][5], "restore")
                if answer is not None:
                    counts[k] += 1

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["%d clients" % clients] = sum(counts) / (time.perf_counter() - start)
    return {workloads[index][0]: out}


def machine_facts(thawd_binary):
    facts = {"kernel": platform.release(), "host": socket.gethostname()}
    with open("/proc/cpuinfo") as f:
        models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
    facts["cpu"] = "%d x %s" % (len(models), models[0] if models else "?")
    version = subprocess.run([thawd_binary, "--version"],
                             capture_output=True, text=True).stdout
    facts["thawd --version"] = version.strip()
    return facts


def pair_ratios(by_round):
    """Each contender against thaw restore (thaw cold where there is no restore),
    round by round (the two ran back to back), then the median of those ratios."""
    out = {}
    for key, rounds in by_round.items():
        workload = key.split("|")[0]
        base = by_round.get(workload + "|thaw restore") or by_round.get(workload + "|thaw cold")
        pairs = [rounds[r] / base[r] for r in rounds if base and r in base and base[r] > 0]
        out[key] = statistics.median(pairs) if pairs else None
    return out


def summarize(samples):
    if not samples:
        return None
    s = sorted(samples)
    pick = lambda p: s[min(len(s) - 1, int(p / 100 * len(s)))]
    return {"n": len(s), "p50": statistics.median(s), "p90": pick(90), "p99": pick(99),
            "min": s[0], "max": s[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    ap.add_argument("--out", default=None)
    ap.add_argument("--thawd", default=os.path.join(ROOT, "build", "invoker", "thawd"))
    args = ap.parse_args()
    runs, warmups = (5, 1) if args.quick else (args.runs, 3)
    workloads = WORKLOADS[:1] + WORKLOADS[2:] if args.quick else WORKLOADS
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    out = args.out or os.path.join(ROOT, "bench", "results",
                                   "%s-%s" % (stamp, socket.gethostname()))
    os.makedirs(out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="thaw-coldstart-")
    os.chmod(work, 0o755)
    thawd = Thawd(work, args.thawd)
    samples, failures, by_round = {}, {}, {}
    try:
        for i, w in enumerate(workloads):
            thawd.deploy("w%d" % i, w)
        for i, w in enumerate(workloads):
            if w[2] == "python3.11":
                deadline = time.time() + 120
                while not thawd.snapshot_ready("w%d" % i) and time.time() < deadline:
                    time.sleep(0.2)
        expected = {}
        for w in workloads:
            _, answer = run_process(bare_argv(w, os.path.join(EXAMPLES, w[1])))
            expected[w[0]] = normalized(answer)
        contenders = ["bare", "bubblewrap", "thaw cold", "thaw restore", "thaw warm"]
        total = (runs + warmups) * len(workloads)
        done = 0
        for run in range(-warmups, runs):
            for i, w in enumerate(workloads):
                code = os.path.join(EXAMPLES, w[1])
                for c in contenders:
                    if c == "thaw restore" and w[2] != "python3.11":
                        continue  # thaw does not snapshot Node.js functions (yet)
                    if c == "bare":
                        ms, answer = run_process(bare_argv(w, code))
                    elif c == "bubblewrap":
                        ms, answer = run_process(bwrap_argv(w, code))
                    else:
                        ms, answer = thawd.invoke("w%d" % i, w[5], c.split()[1])
                    if run < 0:
                        continue
                    key = "%s|%s" % (w[0], c)
                    # A wrong answer is a failure, not a time.
                    if answer is None or normalized(answer) != expected[w[0]]:
                        failures[key] = failures.get(key, 0) + 1
                    else:
                        samples.setdefault(key, []).append(ms)
                        by_round.setdefault(key, {})[run] = ms
                done += 1
                sys.stderr.write("\rcold_start: %d/%d rounds" % (done, total))
        sys.stderr.write("\n")
        idle_mb = idle_instance_memory(thawd, workloads)
        throughput = restore_throughput(thawd, workloads, 3 if args.quick else 10)
    finally:
        thawd.stop()
        shutil.rmtree(work, ignore_errors=True)

    report = {"facts": machine_facts(args.thawd), "runs": runs, "warmups": warmups,
              "samples_ms": samples, "failures": failures,
              "summary": {k: summarize(v) for k, v in samples.items()},
              "ratio_to_restore": pair_ratios(by_round),
              "idle_instance_memory_mb": idle_mb, "restores_per_second": throughput}
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump(report, f, indent=1)
    write_markdown(out, report, workloads)
    svg_plots.medians(os.path.join(out, "medians.svg"), report["summary"])
    svg_plots.distributions(os.path.join(out, "distributions.svg"), samples)
    print(os.path.join(out, "report.md"))
    return 1 if failures else 0


def write_markdown(out, report, workloads):
    s = report["summary"]
    lines = ["# thaw cold-start benchmark", ""]
    lines += ["## Machine", ""] + ["- %s: %s" % (k, v.replace("\n", "; ")) for k, v in
                                   report["facts"].items()] + [""]
    lines += ["## Method", "",
              "Each workload is started by each contender in turn (A B C A B C ...), %d rounds "
              "after %d discarded warm-up rounds. Every contender runs the same interpreter, "
              "imports and handler and must print the same answer as the bare process; a wrong "
              "answer counts as a failure, not a time. bare and bubblewrap run with a clean "
              "environment (PATH, LANG, HOME, TZ) and are timed from spawn to exit; thaw from the HTTP request to thawd until its answer, with the start "
              "mode forced by X-Thaw-Start-Mode. The ratio is the median, over rounds, of each "
              "contender's time divided by thaw restore's in the same round (thaw cold's where "
              "thaw does not snapshot the runtime)."
              % (report["runs"], report["warmups"]), ""]
    lines += ["## Results (ms)", "",
              "| workload | contender | n | p50 | p90 | p99 | min | max | vs thaw restore |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in workloads:
        for key in sorted(k for k in s if k.startswith(w[0] + "|")):
            v = s[key]
            r = report["ratio_to_restore"].get(key)
            ratio = "%.2fx" % r if r else "n/a"
            lines.append("| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s |" % (
                w[0], key.split("|")[1], v["n"], v["p50"], v["p90"], v["p99"], v["min"],
                v["max"], ratio))
    lines += ["", "## Memory per idle instance (its cgroup's usage, median)", "",
              "| workload and how it started | instances | MB |", "| --- | ---: | ---: |"]
    for k, v in sorted(report["idle_instance_memory_mb"].items()):
        lines.append("| %s | %d | %.1f |" % (k.replace("|", ", "), v["n"], v["median_mb"]))
    lines += ["", "## New instances per second from restores (forced, concurrent clients)", "",
              "| workload | clients | restores/s |", "| --- | ---: | ---: |"]
    for w, by_clients in report["restores_per_second"].items():
        for c, rate in by_clients.items():
            lines.append("| %s | %s | %.1f |" % (w, c.split()[0], rate))
    lines += ["", "failures: %s" % (report["failures"] or "none"), "",
              "![medians](medians.svg)", "", "![distributions](distributions.svg)", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
