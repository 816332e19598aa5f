"""Peak memory of whatever a contender starts: a memory cgroup the contender's
first process joins before exec (so its children, containers nested below it
and everything they touch are charged to it), read after it exits. The same
measure thaw reports as Max Memory Used for an instance's own cgroup."""
import os


def memory_files():
    """(the memory controller's root, its usage file, its high-water mark
    file), for cgroup v1 or v2."""
    with open("/proc/mounts") as f:
        for line in f:
            _, path, fstype, opts = line.split()[:4]
            if fstype == "cgroup" and "memory" in opts.split(","):
                return path, "memory.usage_in_bytes", "memory.max_usage_in_bytes"
    return "/sys/fs/cgroup", "memory.current", "memory.peak"


def remove_tree(top):
    """Removes a cgroup directory and the cgroups below it, deepest first."""
    for d, _, _ in sorted(os.walk(top), key=lambda e: -len(e[0])):
        try:
            os.rmdir(d)
        except OSError:
            pass


class MemoryCgroup:
    def __init__(self, path):
        root, _, self.peak_file = memory_files()
        self.path = path  # below the controller's root
        self.dir = os.path.join(root, path)
        os.makedirs(self.dir)

    def joiner(self):
        """A preexec_fn: the child moves itself in before exec."""
        procs = os.path.join(self.dir, "cgroup.procs")

        def join():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        return join

    def peak_mb(self):
        try:
            with open(os.path.join(self.dir, self.peak_file)) as f:
                return int(f.read()) / 1048576
        except OSError:
            return None  # a kernel without memory.peak (cgroup v2 before 5.19)

    def remove(self):
        remove_tree(self.dir)
