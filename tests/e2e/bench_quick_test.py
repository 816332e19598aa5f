#!/usr/bin/env python3
"""./scripts/bench --quick as a smoke test: the report has its shape (not its
numbers): samples, a Markdown table with every contender, machine facts, the
method, and two SVG plots that parse.
    bench_quick_test.py THAWD_BINARY"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.dom.minidom

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THAWD = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(ROOT, "build", "invoker", "thawd")


class QuickBenchmark(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="thaw-bench-quick-")
        cls.result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "cold_start.py"), "--quick", "--out",
             cls.out, "--thawd", THAWD], capture_output=True, text=True, timeout=600)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_it_succeeds_and_names_its_report(self):
        self.assertEqual(self.result.returncode, 0, self.result.stdout + self.result.stderr)
        self.assertIn("report.md", self.result.stdout)

    def test_samples_for_every_contender(self):
        with open(os.path.join(self.out, "samples.json")) as f:
            data = json.load(f)
        contenders = {k.split("|")[1] for k in data["samples_ms"]}
        self.assertEqual(contenders, {"bare", "bubblewrap", "crun", "runc", "runc restore",
                                      "thaw cold", "thaw restore", "thaw warm"})
        workloads = {k.split("|")[0] for k in data["samples_ms"]}
        self.assertEqual(workloads, {"W1 Python stdlib", "W3 Node.js http+crypto",
                                     "W4 native executable"})
        # Peak memory for every contender, thaw's phases for each start mode.
        self.assertEqual(set(data["peak_memory_mb"]), set(data["samples_ms"]))
        self.assertEqual(set(data["thaw_phases_ms"]["W1 Python stdlib|thaw restore"]),
                         {"sandbox", "restore", "handler", "http and thawd"})
        self.assertEqual(set(data["thaw_phases_ms"]["W1 Python stdlib|thaw cold"]),
                         {"sandbox", "init", "handler", "http and thawd"})
        self.assertIn("W3 Node.js http+crypto|thaw restore", data["samples_ms"])
        self.assertIn("W4 native executable|thaw restore", data["samples_ms"])
        self.assertEqual(data["not_run"], {})
        for key, summary in data["summary"].items():
            self.assertEqual(set(summary), {"n", "p50", "p90", "p99", "min", "max"}, key)
        self.assertEqual(data["failures"], {})
        self.assertIn("kernel", data["facts"])

    def test_the_report_has_facts_method_table_and_plots(self):
        with open(os.path.join(self.out, "report.md")) as f:
            text = f.read()
        for part in ("## Machine", "## Method", "| workload | contender | n | p50 | p90 | p99",
                     "thaw restore", "runc restore", "peak memory MB",
                     "## Where thaw's time goes", "## Memory per idle instance",
                     "## New instances per second from restores", "![medians](medians.svg)"):
            self.assertIn(part, text)
        for svg in ("medians.svg", "distributions.svg"):
            xml.dom.minidom.parse(os.path.join(self.out, svg))


if __name__ == "__main__":
    unittest.main()
