"""crun and runc as cold-start contenders: an OCI bundle per workload with the
same read-only /usr as bubblewrap and thaw, and runc restoring a CRIU
checkpoint of the initialized workload (with the CRIU thaw uses).

Containers get every namespace (user with an unprivileged uid range, pid,
network, ipc, uts, mount, cgroup), no capabilities, no new privileges, the
workload's memory as their limit, and a cgroup under thaw-bench-oci-<pid>,
removed at the end.
"""
import ctypes
import itertools
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time

from memory_cgroup import remove_tree

CLONE_NEWNS = 0x00020000
# Unprivileged ids for the containers' root, away from thaw's own range.
HOST_ID_BASE = 300000


def timed(argv, env, stdin=None, preexec_fn=None, timeout=120):
    """Runs argv; returns (ms from spawn to exit, stdout or None on failure,
    stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=out, stderr=err, env=env, preexec_fn=preexec_fn)
        if stdin:
            p.stdin.write(stdin)
            p.stdin.close()
        watchdog = threading.Timer(timeout, p.kill)
        watchdog.start()
        _, status = os.waitpid(p.pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        watchdog.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace").strip()
        return elapsed, text if p.returncode == 0 else None, err.read().decode(errors="replace")


class OciRuntimes:
    def __init__(self, work, env, criu):
        self.work = os.path.join(work, "oci")
        self.env = env  # the containers' environment
        # runc and crun themselves, and CRIU under them, need iptables from sbin.
        self.tool_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        self.criu = criu
        self.runc = shutil.which("runc", path="/usr/sbin:/usr/bin")
        self.crun = shutil.which("crun", path="/usr/sbin:/usr/bin")
        self.cgroup_parent = "thaw-bench-oci-%d" % os.getpid()
        self.ids = itertools.count()
        self.bundles = {}
        self.code_copies = {}
        os.makedirs(self.work)
        self.rootfs = self._rootfs()
        self.crun_ns = None
        self.crun_helper = None

    def missing(self):
        return [n for n, p in (("runc", self.runc), ("crun", self.crun), ("criu", self.criu))
                if not p]

    def _rootfs(self):
        """An empty read-only root with the mount points and the /lib, /bin
        links a merged-/usr system has; the runtimes mount the rest."""
        root = os.path.join(self.work, "rootfs")
        for d in ("usr", "etc", "var/task", "tmp", "proc", "dev"):
            os.makedirs(os.path.join(root, d))
        for link in ("lib", "lib64", "bin", "sbin"):
            os.symlink("usr/" + link, os.path.join(root, link))
        return root

    def _reachable(self, code):
        """A copy of `code` under the work directory. CRIU opens a restored
        container's bind sources from inside its user namespace, whose root
        cannot pass a directory only root may enter (a checkout in /root or
        a mktemp -d directory); the work directory is open to it."""
        if code not in self.code_copies:
            copy = os.path.join(self.work, "code-%d" % len(self.code_copies))
            shutil.copytree(code, copy, symlinks=True)
            self.code_copies[code] = copy
        return self.code_copies[code]

    def bundle(self, key, argv, code, memory_mb, cgroup=None):
        """The bundle directory for one program (created once); its container's
        cgroup is `cgroup` (absolute, below the benchmark's parent) if given."""
        if key in self.bundles:
            return self.bundles[key]
        code = self._reachable(code)
        path = os.path.join(self.work, "bundle-%d" % len(self.bundles))
        os.makedirs(path)
        ids = [{"containerID": 0, "hostID": HOST_ID_BASE, "size": 65536}]
        config = {
            "ociVersion": "1.0.2",
            "root": {"path": self.rootfs, "readonly": True},
            "hostname": "bench",
            "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": argv,
                        "env": ["%s=%s" % kv for kv in self.env.items()], "cwd": "/",
                        "noNewPrivileges": True, "capabilities": {}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "mode=755", "size=1m"]},
                {"destination": "/usr", "type": "bind", "source": "/usr",
                 "options": ["rbind", "ro"]},
                {"destination": "/etc", "type": "bind", "source": "/etc",
                 "options": ["rbind", "ro"]},
                {"destination": "/var/task", "type": "bind", "source": code,
                 "options": ["rbind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "size=64m"]},
            ],
            "linux": {
                "namespaces": [{"type": t} for t in
                               ("user", "pid", "network", "ipc", "uts", "mount", "cgroup")],
                "uidMappings": ids, "gidMappings": ids,
                "cgroupsPath": cgroup or "/%s/%s" % (self.cgroup_parent, os.path.basename(path)),
                "resources": {"memory": {"limit": memory_mb << 20}},
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
            },
        }
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        self.bundles[key] = path
        return path

    def _enter_crun_namespace(self):
        # crun 1.8 refuses a hybrid cgroup layout (v1 controllers plus an empty
        # cgroup2 at /sys/fs/cgroup/unified); it runs in a mount namespace of
        # its own without that cgroup2 mount, where it sees plain v1.
        if self.crun_ns is None:
            self.crun_helper = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 "umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep infinity"],
                stdout=subprocess.PIPE)
            self.crun_helper.stdout.readline()
            self.crun_ns = os.open("/proc/%d/ns/mnt" % self.crun_helper.pid, os.O_RDONLY)
        fd = self.crun_ns

        def enter():
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNS) != 0:
                os._exit(125)
        return enter

    def run(self, runtime, bundle, preexec_fn=None):
        """crun or runc runs the bundle's program once, in the foreground."""
        cid = "tb%d-%d" % (os.getpid(), next(self.ids))
        if runtime == "crun":
            enter = self._enter_crun_namespace()

            def both():
                enter()
                if preexec_fn:
                    preexec_fn()
            return timed([self.crun, "run", "--bundle", bundle, cid], self.tool_env,
                         preexec_fn=both)
        return timed([self.runc, "run", "--bundle", bundle, cid], self.tool_env,
                     preexec_fn=preexec_fn)

    def checkpoint(self, bundle, timeout=120):
        """Runs the bundle's waiting program with runc until it says ready,
        then checkpoints it with CRIU; returns the image directory."""
        cid = "tb%d-%d" % (os.getpid(), next(self.ids))
        images = os.path.join(self.work, cid + "-images")
        p = subprocess.Popen([self.runc, "run", "-d", "--bundle", bundle, cid],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.tool_env)
        try:
            said, end = b"", time.time() + timeout
            while b"ready\n" not in said:
                left = end - time.time()
                if left <= 0:
                    raise RuntimeError("runc run: not ready: " + said.decode(errors="replace"))
                if select.select([p.stderr], [], [], left)[0]:
                    chunk = os.read(p.stderr.fileno(), 4096)
                    if not chunk:  # the container is gone
                        raise RuntimeError("runc run: " + said.decode(errors="replace"))
                    said += chunk
            r = subprocess.run([self.runc, "--criu", self.criu, "checkpoint", "--image-path",
                                images, "--work-path", images + "-work", cid],
                               capture_output=True, text=True, env=self.tool_env)
            if r.returncode != 0:
                raise RuntimeError("runc checkpoint: " + r.stderr)
        finally:
            subprocess.run([self.runc, "delete", "--force", cid], capture_output=True,
                           env=self.tool_env)
            p.kill()
            p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                f.close()
        # The restored task reads its images from inside its user namespace.
        for d, _, files in os.walk(images):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        return images

    def restore(self, bundle, images, event, preexec_fn=None):
        """runc restores the checkpoint, which reads `event` and answers."""
        cid = "tb%d-%d" % (os.getpid(), next(self.ids))
        work = os.path.join(self.work, cid + "-restore")
        try:
            return timed([self.runc, "--criu", self.criu, "restore", "--image-path", images,
                          "--work-path", work, "--bundle", bundle, cid], self.tool_env,
                         stdin=(json.dumps(event) + "\n").encode(), preexec_fn=preexec_fn)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def close(self):
        if self.crun_helper:
            self.crun_helper.kill()
            self.crun_helper.wait()
            self.crun_helper.stdout.close()
            os.close(self.crun_ns)
        # Containers that outlived a failed run, then their cgroups.
        for tool, state in ((self.runc, "/run/runc"), (self.crun, "/run/crun")):
            prefix = "tb%d-" % os.getpid()
            for cid in os.listdir(state) if tool and os.path.isdir(state) else []:
                if cid.startswith(prefix):
                    subprocess.run([tool, "delete", "--force", cid], capture_output=True,
                                   env=self.tool_env)
        for controller in os.listdir("/sys/fs/cgroup"):
            remove_tree(os.path.join("/sys/fs/cgroup", controller, self.cgroup_parent))
