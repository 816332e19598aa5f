#!/usr/bin/env python3
"""scripts/down stops the process that holds the pid file's lock, as thawd
does while it lives, and nothing else: a stale pid file that names a process
now someone else's leaves that process alone.

    tests/e2e/scripts_down_test.py
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_down(top):
    return subprocess.run([os.path.join(top, "scripts", "down")], capture_output=True,
                          text=True, timeout=60)


def alive(proc):
    return proc.poll() is None


def main():
    top = tempfile.mkdtemp(prefix="thaw-down-")
    others = []
    try:
        os.makedirs(os.path.join(top, "scripts"))
        shutil.copy(os.path.join(ROOT, "scripts", "down"), os.path.join(top, "scripts", "down"))
        state = os.path.join(top, ".thaw")
        os.makedirs(state)
        pid_file = os.path.join(state, "thawd.pid")

        # Stale: the file names a live process that holds no lock.
        bystander = subprocess.Popen(["sleep", "60"])
        others.append(bystander)
        with open(pid_file, "w") as f:
            f.write("%d\n" % bystander.pid)
        r = run_down(top)
        assert r.returncode == 0, r
        assert "stale" in r.stdout, r.stdout
        time.sleep(0.2)
        assert alive(bystander), "down killed a process that was not thawd"
        assert not os.path.exists(pid_file), "the stale pid file is still there"

        # Live: a process holding the lock (as thawd does) is stopped.
        with open(pid_file, "w") as f:
            f.write("")
        # One process that takes the lock itself (blocking: it waits out our
        # probes), as thawd does; flock(1) would leave its child holding it.
        holder = subprocess.Popen([sys.executable, "-c", (
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1])\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "time.sleep(60)\n"), pid_file])
        others.append(holder)
        with open(pid_file, "w") as f:
            f.write("%d\n" % holder.pid)
        deadline = time.time() + 10
        while subprocess.run(["flock", "--nonblock", pid_file, "true"]).returncode == 0:
            assert time.time() < deadline, "the holder never took the lock"
            time.sleep(0.05)
        # Reaped as soon as it ends, as init reaps thawd: down waits for the
        # pid to go, and a zombie's stays.
        reaper = threading.Thread(target=holder.wait)
        reaper.start()
        r = run_down(top)
        reaper.join(timeout=10)
        assert r.returncode == 0, r
        assert "thawd stopped" in r.stdout and "killing" not in r.stderr, r
        assert holder.returncode is not None
        assert alive(bystander), "down killed a process that was not thawd"
        print("scripts_down_test: ok")
        return 0
    finally:
        for p in others:
            if alive(p):
                p.kill()
                p.wait()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
