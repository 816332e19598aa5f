"""A thawd of this checkout for the cold-start benchmark: started on a free
port with its own state directory and cgroup parent, functions deployed
through the Lambda API, invocations with a forced start mode, and what thawd
reports about each (Server-Timing phases, Max Memory Used)."""
import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import threading
import time
import zipfile
from io import BytesIO

from memory_cgroup import memory_files
from workloads import code_dir


class Thawd:
    def __init__(self, work, binary, cgroup_parent, extra_args=()):
        self.state = os.path.join(work, "state")
        self.cgroup_parent = cgroup_parent
        self.log = open(os.path.join(work, "thawd.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--state-dir", self.state,
             "--cgroup-parent", cgroup_parent, "--max-concurrency", "16",
             "--memory-budget-mb", "200000", *extra_args],
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
            self.stop()  # nothing of it may outlive the benchmark
            raise SystemExit("cold_start: thawd did not start: " + open(self.log.name).read())
        with open(os.path.join(self.state, "admin-token")) as f:
            self.token = f.read().strip()
        self.conn = self.connect()

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(self, method, path, body=b"", headers=None, conn=None):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers or {})
        c = conn or self.conn
        c.request(method, path, body, h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def deploy(self, name, workload, build_dir):
        code = code_dir(workload, build_dir)
        buf = BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in sorted(os.listdir(code)):
                if os.path.isfile(os.path.join(code, f)):
                    z.write(os.path.join(code, f), f)
        body = {"FunctionName": name, "Runtime": workload.runtime, "Handler": workload.handler,
                "MemorySize": workload.memory_mb, "Timeout": 60,
                "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}}
        status, _, text = self.call("POST", "/2015-03-31/functions", json.dumps(body))
        if status != 201:
            raise SystemExit("cold_start: deploy %s: %s" % (name, text))

    def snapshot_ready(self, name):
        _, _, text = self.call("GET", "/thaw/v1/snapshots")
        return any(s["FunctionName"] == name for s in json.loads(text)["Snapshots"])

    def invoke(self, name, event, mode, conn=None):
        """(ms from request to answer, the answer or None, Max Memory Used MB,
        phases ms: sandbox, init or restore, handler, and the rest: HTTP,
        scheduling, thawd)."""
        start = time.perf_counter()
        status, headers, text = self.call(
            "POST", "/2015-03-31/functions/%s/invocations" % name, json.dumps(event),
            {"X-Thaw-Start-Mode": mode, "X-Amz-Log-Type": "Tail"}, conn)
        elapsed = (time.perf_counter() - start) * 1000
        ok = status == 200 and "X-Amz-Function-Error" not in headers and \
            headers.get("X-Thaw-Start-Mode") == mode
        if not ok:
            return elapsed, None, None, {}, "%d %s" % (status, text[:300].decode(errors="replace"))
        log = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode(errors="replace")
        m = re.search(r"Max Memory Used: (\d+) MB", log)
        phases = {}
        for part in headers.get("Server-Timing", "").split(","):
            name_dur = re.match(r"\s*([a-z]+);dur=([0-9.]+)", part)
            if name_dur:
                phases[name_dur.group(1)] = float(name_dur.group(2))
        phases["http and thawd"] = max(0.0, elapsed - sum(phases.values()))
        return elapsed, text.decode(), int(m.group(1)) if m else None, phases, ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def idle_instance_memory(thawd, workloads):
    """Memory each idle instance's cgroup holds, median per workload (MB)."""
    root, name, _ = memory_files()
    _, _, text = thawd.call("GET", "/thaw/v1/instances")
    per = {}
    for inst in json.loads(text)["Instances"]:
        if inst["State"] != "Idle":
            continue
        path = os.path.join(root, thawd.cgroup_parent, inst["Id"], name)
        try:
            with open(path) as f:
                mb = int(f.read()) / 1048576
        except OSError:
            continue
        w = workloads[int(inst["FunctionName"][1:])].name
        per.setdefault("%s|thaw %s" % (w, inst["StartMode"]), []).append(mb)
    return {k: {"n": len(v), "median_mb": statistics.median(v)} for k, v in per.items()}


def restore_throughput(thawd, workloads, restorable, seconds):
    """New instances per second that forced restores sustain, with 1, 2 and 4
    clients at once (2 cores), for the first workload thaw snapshots."""
    index = next((i for i, w in enumerate(workloads) if restorable(w)), None)
    if index is None:
        return {}
    out = {}
    for clients in (1, 2, 4):
        counts = [0] * clients
        end = time.perf_counter() + seconds

        def loop(k):
            conn = thawd.connect()
            while time.perf_counter() < end:
                if thawd.invoke("w%d" % index, workloads[index].event, "restore", conn)[1]:
                    counts[k] += 1
            conn.close()

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["%d clients" % clients] = sum(counts) / (time.perf_counter() - start)
    return {workloads[index].name: out}
