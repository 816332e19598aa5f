#!/usr/bin/env python3
"""Soak: mixed load against one thawd for a while, hostile functions beside
well-behaved ones, then an account of what thawd holds and lost.

Load, each from its own thread: synchronous invocations of a well-behaved
function (whose latency is measured), asynchronous invocations (every
accepted one must run), deploys, updates and deletes, forced restores, log
followers, and the hostile functions of tests/integration/hostile_functions_test:
endless output, a runtime that stops reading its channel, errors that are not
UTF-8, a handler that spins to its timeout, headers that would split the HTTP
answer, a /tmp filled with files.

At the end, once idle instances have expired: thawd's descriptors, threads,
mounts, cgroups and child processes against what it held before the load,
every accepted event run, thawd's memory slope (MB per hour, least squares
over samples), and the well-behaved function's p99 under load against its
p99 alone. Exits 1 when anything leaked, an event was lost, or (unless
--no-latency-check) the p99 under load is over twice the p99 alone.

    bench/soak.py [--seconds 1800] [--thawd build/invoker/thawd] [--json FILE]
"""
import argparse
import base64
import http.client
import io
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from thawd_client import Thawd  # noqa: E402

ROOT = os.path.dirname(HERE)

GOOD = "def handler(event, context):\n    return {'ok': event.get('n')}\n"
HOSTILE = {
    "chatty": "import sys\ndef handler(event, context):\n"
              "    line = 'x' * 1023 + '\\n'\n"
              "    for _ in range(32768):\n        sys.stdout.write(line)\n    return 1\n",
    "stall": "import fcntl, json, os, struct, time\n"
             "def handler(event, context):\n"
             "    fcntl.fcntl(3, 1031, 4096)\n"
             "    h = json.dumps({'type': 'response'}).encode()\n"
             "    os.write(4, struct.pack('>II', len(h), 2) + h + b'{}')\n"
             "    time.sleep(3600)\n",
    "bytes": "import json, os, struct\n"
             "def handler(event, context):\n"
             "    h = json.dumps({'type': 'error'}).encode()\n"
             "    body = b'\\xff\\xfe not UTF-8'\n"
             "    os.write(4, struct.pack('>II', len(h), len(body)) + h + body)\n"
             "    os._exit(0)\n",
    "spin": "def handler(event, context):\n    while True:\n        pass\n",
    "splitter": "def handler(event, context):\n"
                "    return {'statusCode': 200, 'headers': {'X-A': 'a\\r\\nX-Injected: 1'}, 'body': 'x'}\n",
    "inodes": "import os, uuid\ndef handler(event, context):\n"
              "    d = '/tmp/' + uuid.uuid4().hex\n    os.mkdir(d)\n"
              "    try:\n        for i in range(50000):\n"
              "            open('%s/%d' % (d, i), 'w').close()\n"
              "    except OSError:\n        pass\n    return 1\n",
}


def zipped(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        entry = zipfile.ZipInfo("handler.py")
        entry.external_attr = 0o644 << 16  # readable by the instance's user
        z.writestr(entry, source)
    return base64.b64encode(buf.getvalue()).decode()


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def measure_latencies(port, token, seconds, results):
    """Synchronous invocations of "good", one every 20 ms, on one connection;
    puts (latencies ms, problems) on results. A latency is (total, the
    handler's part as thawd timed it in Server-Timing)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": "Bearer " + token}
    out, problems = [], []
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        start = time.perf_counter()
        conn.request("POST", "/2015-03-31/functions/good/invocations", json.dumps({"n": n}),
                     headers)
        answer = conn.getresponse()
        body = answer.read()
        took = (time.perf_counter() - start) * 1000
        handler = re.search(r"handler;dur=([0-9.]+)", answer.getheader("Server-Timing", ""))
        out.append((took, float(handler.group(1)) if handler else 0.0))
        if (answer.status != 200 or json.loads(body) != {"ok": n}) and len(problems) < 50:
            problems.append("good answered %d %r" % (answer.status, body[:200]))
        n += 1
        time.sleep(0.02)
    conn.close()
    results.put((out, problems))


class Soak:
    def __init__(self, thawd):
        self.thawd = thawd
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.accepted_events = 0
        self.connections = []  # closed at the end: an open one is the client's, not a leak
        self.hostile_names = list(HOSTILE)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def problem(self, text):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(text)

    def create(self, name, source, extra=None, conn=None):
        body = {"FunctionName": name, "Runtime": "python3.11", "Handler": "handler.handler",
                "Timeout": 3, "Code": {"ZipFile": zipped(source)}}
        body.update(extra or {})
        return self.thawd.call("POST", "/2015-03-31/functions", json.dumps(body), conn=conn)[0]

    def invoke(self, name, event, headers=None, conn=None):
        return self.thawd.call("POST", "/2015-03-31/functions/%s/invocations" % name,
                               json.dumps(event), headers, conn)

    def latencies(self, seconds):
        """The well-behaved function's latencies (ms) for seconds, measured
        from a process of its own: in this one, the load's threads hold the
        GIL for up to its switch interval (5 ms) at a time, which would be
        counted as thawd's latency."""
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        measurer = context.Process(target=measure_latencies,
                                   args=(self.thawd.port, self.thawd.token, seconds, results))
        measurer.start()
        while True:
            try:
                out, problems = results.get(timeout=1)
                break
            except queue.Empty:
                if not measurer.is_alive() or self.stop.is_set():
                    measurer.terminate()
                    measurer.join()
                    raise SystemExit("soak: the latency measurer ended without its figures")
        measurer.join()
        for p in problems:
            self.problem(p)
        return out

    # The load's threads; each runs until self.stop.
    def asynchronous(self):
        conn = self.thawd.connect()
        self.connections.append(conn)
        while not self.stop.is_set():
            status, _, body = self.invoke("good-async", {"n": 1},
                                          {"X-Amz-Invocation-Type": "Event"}, conn)
            if status == 202:
                with self.lock:
                    self.accepted_events += 1
            else:
                self.problem("event refused: %d %r" % (status, body[:200]))
            time.sleep(0.05)

    def deploys(self):
        conn = self.thawd.connect()
        self.connections.append(conn)
        i = 0
        while not self.stop.is_set():
            name = "churn-%d" % (i % 3)
            if self.create(name, GOOD, {"SnapStart": {"ApplyOn": "None"}}, conn) == 201:
                config = json.dumps({"MemorySize": 256})
                self.thawd.call("PUT", "/2015-03-31/functions/%s/configuration" % name, config,
                                conn=conn)
                self.invoke(name, {"n": i}, conn=conn)
                self.thawd.call("DELETE", "/2015-03-31/functions/" + name, conn=conn)
                self.count("deploy cycles")
            i += 1
            time.sleep(0.2)

    def restores(self):
        conn = self.thawd.connect()
        self.connections.append(conn)
        while not self.stop.is_set():
            status, headers, _ = self.invoke("good-snap", {"n": 2},
                                             {"X-Thaw-Start-Mode": "restore"}, conn)
            self.count("forced restores" if status == 200 else "restores refused")
            time.sleep(0.5)

    def follower(self):
        conn = self.thawd.connect()
        self.connections.append(conn)
        offset = 0
        while not self.stop.is_set():
            status, _, body = self.thawd.call(
                "GET", "/thaw/v1/functions/good/logs?offset=%d&wait=2" % offset, conn=conn)
            if status == 200:
                offset = json.loads(body)["NextOffset"]
                self.count("log polls")

    def hostile(self):
        conn = self.thawd.connect()
        self.connections.append(conn)
        names = sorted(self.hostile_names)
        i = 0
        while not self.stop.is_set():
            name = names[i % len(names)]
            try:
                if name == "splitter":
                    status, headers, _ = self.thawd.call("GET", "/function/splitter", conn=conn)
                    if "X-Injected" in headers:
                        self.problem("a function injected a header")
                else:
                    self.invoke(name, {"pad": "x" * (1 << 20)} if name == "stall" else {},
                                conn=conn)
                self.count("hostile invocations")
            except Exception as e:  # the connection ended; the next call opens another
                self.problem("hostile %s: %s" % (name, e))
                conn = self.thawd.connect()
                self.connections.append(conn)
            i += 1


def holdings(thawd):
    """What thawd holds now: descriptors, threads, mounts, cgroups below its
    parent, processes in them."""
    pid = thawd.proc.pid
    # Function logs stay open for appending while thawd runs, one per function
    # that has logged: not a leak.
    targets = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if "/state/logs/" not in target:
            # What kind, not which: "socket", "pipe", "anon_inode:[pidfd]", a path.
            targets.append(target.split(":[")[0] if ":[" in target else target)
    fds = len(targets)
    threads = len(os.listdir("/proc/%d/task" % pid))
    with open("/proc/%d/mountinfo" % pid) as f:
        mounts = sum(1 for _ in f)
    groups, processes = 0, 0
    root = "/sys/fs/cgroup/memory/" + thawd.cgroup_parent
    for dirpath, _, files in os.walk(root):
        if dirpath == root or os.path.basename(dirpath).startswith("spare-"):
            continue
        groups += 1
        if "cgroup.procs" in files:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                processes += sum(1 for _ in f)
    children = 0  # namespace holders, criu kept ready: each holds namespaces or files
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    children += int(f.read().rsplit(")", 1)[1].split()[1]) == pid
            except (OSError, IndexError, ValueError):
                pass
    return {"descriptors": fds, "descriptor_kinds": sorted(targets), "threads": threads,
            "children": children, "mounts": mounts, "cgroups": groups,
            "processes": processes}


def slowest_parts(latencies):
    """Of the slowest 1% of invocations: the mean total, the mean part the
    handler took (instance side: sending the event, running, receiving the
    answer) and the mean rest (HTTP and thawd), ms."""
    slow = sorted(latencies)[-max(1, len(latencies) // 100):]
    total = statistics.mean(t for t, _ in slow)
    handler = statistics.mean(h for _, h in slow)
    return {"total": round(total, 2), "handler": round(handler, 2),
            "http_and_thawd": round(total - handler, 2)}


def cpu_seconds(thawd):
    """CPU time so far of thawd itself, of its instances (and the criu runs
    tracked in their groups), and of this client."""
    with open("/proc/%d/stat" % thawd.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    instances = 0.0
    try:
        with open("/sys/fs/cgroup/cpuacct/%s/cpuacct.usage" % thawd.cgroup_parent) as f:
            instances = int(f.read()) / 1e9
    except OSError:
        pass  # no v1 cpuacct here: reported as 0
    client = os.times()
    return {"thawd": own, "instances": instances, "client": client.user + client.system}


def anonymous_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def slope_mb_per_hour(samples):
    if len(samples) < 3:
        return 0.0
    xs = [t for t, _ in samples]
    ys = [kb / 1024.0 for _, kb in samples]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=1800)
    parser.add_argument("--thawd", default=os.path.join(ROOT, "build", "invoker", "thawd"))
    parser.add_argument("--json", help="write the figures there too")
    parser.add_argument("--alone-seconds", type=int, default=0,
                        help="how long the p99 alone is measured (default: a tenth of --seconds, "
                        "at least 10)")
    parser.add_argument("--load", default="async,deploys,restores,followers,hostile",
                        help="which load runs, to find what costs latency (comma-separated)")
    parser.add_argument("--no-latency-check", action="store_true",
                        help="report the p99s without judging them (short runs, sanitizers)")
    parser.add_argument("--hostile", default=",".join(sorted(HOSTILE)),
                        help="which hostile functions run (comma-separated)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("soak: needs root")
    # Stopped early (a shell started it in the background, where SIGINT is
    # ignored, or a test's timeout ended it): thawd goes down with it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit("soak: stopped"))

    work = tempfile.mkdtemp(prefix="thaw-soak-")
    keep_alive = 5
    thawd = Thawd(work, args.thawd, "thaw-soak-%d" % os.getpid(),
                  ["--keep-alive", str(keep_alive), "--warm-memory-mb", "0",
                   "--max-output-kb", "256"])
    soak = Soak(thawd)
    soak.hostile_names = args.hostile.split(",")
    failed = []
    try:
        # Code of its own for good-snap: functions with the same code and
        # configuration share one snapshot (and the criu kept ready for it).
        for name, extra, source in (
                ("good", {"SnapStart": {"ApplyOn": "None"}}, GOOD),
                ("good-async", {"SnapStart": {"ApplyOn": "None"}}, GOOD),
                ("good-snap", {}, GOOD + "# restored\n")):
            if soak.create(name, source, extra) != 201:
                raise SystemExit("soak: cannot deploy " + name)
        for name, source in HOSTILE.items():
            if soak.create(name, source, {"SnapStart": {"ApplyOn": "None"}}) != 201:
                raise SystemExit("soak: cannot deploy " + name)
        soak.latencies(3)  # warm instance, and the snapshot of good-snap
        for conn in soak.connections:
            conn.close()
        time.sleep(keep_alive + 3)
        before = holdings(thawd)

        alone_seconds = args.alone_seconds or max(10, args.seconds // 10)
        alone = soak.latencies(alone_seconds)
        load = {"async": [soak.asynchronous], "deploys": [soak.deploys],
                "restores": [soak.restores], "followers": [soak.follower, soak.follower],
                "hostile": [soak.hostile, soak.hostile]}
        threads = [threading.Thread(target=t, daemon=True)
                   for kind in args.load.split(",") for t in load[kind]]
        for t in threads:
            t.start()
        memory = []
        loaded = []
        measure = threading.Thread(target=lambda: loaded.extend(soak.latencies(args.seconds)))
        measure.start()
        start = time.time()
        cpu_before = cpu_seconds(thawd)
        while measure.is_alive():
            memory.append((time.time() - start, anonymous_kb(thawd.proc.pid)))
            measure.join(5)
        cpu_after = cpu_seconds(thawd)
        soak.stop.set()
        for t in threads:
            t.join(120)

        # Every accepted event runs; then idle instances expire. The first
        # connection sat idle through the load, and thawd has closed it.
        thawd.conn.close()
        thawd.conn = thawd.connect()
        deadline = time.time() + 300
        while time.time() < deadline:
            _, _, body = thawd.call("GET", "/thaw/v1/usage")
            ran = [f for f in json.loads(body)["Functions"] if f["FunctionName"] == "good-async"]
            done = ran and ran[0]["Invocations"] >= soak.accepted_events
            if soak.accepted_events == 0 or done:
                break
            time.sleep(1)
        ran_events = ran[0]["Invocations"] if ran else 0
        # The criu started ahead for good-snap's next restore ends with it.
        thawd.call("DELETE", "/2015-03-31/functions/good-snap")
        for conn in soak.connections:
            conn.close()
        thawd.conn.close()
        thawd.conn = thawd.connect()
        time.sleep(keep_alive + 5)
        after = holdings(thawd)
        alive = thawd.proc.poll() is None

        alone_ms, loaded_ms = [t for t, _ in alone], [t for t, _ in loaded]
        figures = {
            "seconds": args.seconds, "counts": soak.counts, "problems": soak.errors,
            "accepted_events": soak.accepted_events, "events_run": ran_events,
            "holdings_before": before, "holdings_after": after,
            "memory_slope_mb_per_hour": round(slope_mb_per_hour(memory), 2),
            "memory_mb_first_last": [round(memory[0][1] / 1024, 1), round(memory[-1][1] / 1024, 1)]
            if memory else None,
            "good_p50_p99_alone_ms": [percentile(alone_ms, 50), percentile(alone_ms, 99)],
            "good_p50_p99_loaded_ms": [percentile(loaded_ms, 50), percentile(loaded_ms, 99)],
            "good_slowest_percent_alone_ms": slowest_parts(alone),
            "good_slowest_percent_loaded_ms": slowest_parts(loaded),
            "good_invocations": [len(alone), len(loaded)],
            "cpu_seconds_under_load": {k: round(cpu_after[k] - cpu_before[k], 1)
                                       for k in cpu_after},
        }
        print(json.dumps(figures, indent=1))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)
        if not alive:
            failed.append("thawd died")
        for key in ("descriptors", "threads", "children", "mounts", "cgroups", "processes"):
            if after[key] > before[key]:
                failed.append("%s: %d before the load, %d after" % (key, before[key], after[key]))
        if ran_events < soak.accepted_events:
            failed.append("events: %d accepted, %d ran" % (soak.accepted_events, ran_events))
        if any(p.startswith("good answered") or "injected" in p for p in soak.errors):
            failed.append("well-behaved answers went wrong or a header was injected")
        p99_alone, p99_loaded = percentile(alone_ms, 99), percentile(loaded_ms, 99)
        if not args.no_latency_check and p99_alone and p99_loaded > 2 * p99_alone:
            failed.append("p99 %.1f ms under load, %.1f ms alone" % (p99_loaded, p99_alone))
    finally:
        soak.stop.set()
        thawd.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("soak: FAILED: " + "; ".join(failed))
        sys.exit(1)
    print("soak: passed")


if __name__ == "__main__":
    main()
