#!/usr/bin/env python3
"""What egress costs, end to end through thawd: cold starts and restores of
one Python function with and without a link (alternated, so both meet the
same machine), and warm invocations that each make one HTTP request to a
server in an "outside" network namespace this script makes (nothing leaves
the machine). Needs root.

    bench/egress.py [--runs N] [--warm N] [--only cold|restore|warm] [--thawd PATH]

Prints p50 and p99 from request to answer and of Server-Timing's sandbox
(cold) or restore phase, and for warm requests p50, p99 and requests per
second with 1 and 4 clients.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from bench_report import summarize
from thawd_client import Thawd
from workloads import ROOT

SUBNET = "10.212.0.0/16"
OUTSIDE_HOST, OUTSIDE_SERVER = "10.211.0.1", "10.211.0.2"

CODE = """
import urllib.request
def handler(event, context):
    if "url" in event:
        with urllib.request.urlopen(event["url"], timeout=5) as r:
            return {"status": r.status, "bytes": len(r.read())}
    return {"ok": True}
"""


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


class Outside:
    """A network namespace with an HTTP server, linked to the host."""

    def __init__(self, work):
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        time.sleep(0.2)
        ns = "/proc/%d/ns/net" % self.holder.pid
        sh("ip", "link", "add", "tbench0", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", OUTSIDE_HOST + "/24", "dev", "tbench0")
        sh("ip", "link", "set", "tbench0", "up")
        with open("/proc/sys/net/ipv4/conf/tbench0/forwarding", "w") as f:
            f.write("1")
        inside = ["nsenter", "--net=" + ns]
        sh(*inside, "ip", "addr", "add", OUTSIDE_SERVER + "/24", "dev", "eth0")
        sh(*inside, "ip", "link", "set", "eth0", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        www = os.path.join(work, "www")
        os.makedirs(www)
        with open(os.path.join(www, "item.json"), "w") as f:
            f.write(json.dumps({"item": "x" * 200}))
        self.server = subprocess.Popen(
            inside + [sys.executable, "-m", "http.server", "--bind", OUTSIDE_SERVER,
                      "--directory", www, "8080"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self):
        for p in (self.server, self.holder):
            p.kill()
            p.wait()
        subprocess.run(["ip", "link", "del", "tbench0"], stderr=subprocess.DEVNULL)


def deploy(thawd, name, egress):
    import base64
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("handler.py")
        info.external_attr = 0o644 << 16  # readable by the function's uid
        z.writestr(info, CODE)
    body = {"FunctionName": name, "Runtime": "python3.11", "Handler": "handler.handler",
            "MemorySize": 256, "Timeout": 30,
            "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}}
    if egress:
        body["Egress"] = {"Allow": [OUTSIDE_SERVER + "/32:8080"]}
    status, _, text = thawd.call("POST", "/2015-03-31/functions", json.dumps(body))
    if status != 201:
        raise SystemExit("egress: deploy %s: %s" % (name, text))


def line(what, ms):
    s = summarize(ms)
    print("%-44s n=%-4d p50=%7.2f ms  p99=%7.2f ms" % (what, s["n"], s["p50"], s["p99"]))


def starts(thawd, mode, runs, pause):
    phase = "sandbox" if mode == "cold" else "restore"
    out = {name: ([], []) for name in ("plain", "linked")}
    for _ in range(runs):
        for name in ("plain", "linked"):
            ms, answer, _, phases, error = thawd.invoke(name, {}, mode)
            if answer is None:
                with open(thawd.log.name) as f:
                    why = [l for l in f if "fallback" in l or "failed" in l][-2:]
                raise SystemExit("egress: %s %s: %s %s" % (mode, name, error, "".join(why)))
            out[name][0].append(ms)
            out[name][1].append(phases.get(phase, 0.0))
            time.sleep(pause)
    for name, (total, part) in out.items():
        line("%s %s, request to answer" % (mode, name), total)
        line("%s %s, %s phase" % (mode, name, phase), part)


def warm(thawd, runs, clients):
    url = "http://%s:8080/item.json" % OUTSIDE_SERVER
    samples, lock = [], threading.Lock()

    def client():
        conn = thawd.connect()
        for _ in range(runs // clients):
            ms, answer, _, _, error = thawd.invoke("linked", {"url": url}, "warm", conn)
            if answer is None or '"status": 200' not in answer:
                raise SystemExit("egress: warm: %s %s" % (error, answer))
            with lock:
                samples.append(ms)
    # Instances for every client first, so no sample is a start.
    threads = [threading.Thread(target=lambda: thawd.invoke("linked", {}, "cold", thawd.connect()))
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    line("warm + one HTTP request, %d client(s)" % clients, samples)
    print("%-44s %.0f requests/s" % ("", len(samples) / seconds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--only", choices=("cold", "restore", "warm"), help="one part only")
    ap.add_argument("--thawd", default=os.path.join(ROOT, "build", "invoker", "thawd"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("egress: needs root")
    work = tempfile.mkdtemp(prefix="thaw-egress-bench-")
    outside = Outside(work)
    thawd = None
    try:
        thawd = Thawd(work, args.thawd, "thaw-bench-egress-%d" % os.getpid(),
                      ["--egress-subnet", SUBNET, "--egress-dns", OUTSIDE_SERVER])
        deploy(thawd, "plain", False)
        deploy(thawd, "linked", True)
        deadline = time.time() + 120
        while not (thawd.snapshot_ready("plain") and thawd.snapshot_ready("linked")):
            if time.time() > deadline:
                with open(os.path.join(work, "thawd.log")) as f:
                    tail = [l for l in f if "snapshot" in l][-3:]
                raise SystemExit("egress: no snapshots after 120 s: " + "".join(tail))
            time.sleep(0.2)
        if args.only in (None, "cold"):
            starts(thawd, "cold", args.runs, args.pause)
        if args.only in (None, "restore"):
            starts(thawd, "restore", args.runs, args.pause)
        if args.only in (None, "warm"):
            warm(thawd, args.warm, 1)
            warm(thawd, args.warm, 4)
    finally:
        if os.environ.get("EGRESS_BENCH_LOG"):
            shutil.copy(os.path.join(work, "thawd.log"), os.environ["EGRESS_BENCH_LOG"])
        if thawd:
            thawd.stop()
        outside.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
