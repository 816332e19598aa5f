"""Attacks run inside a thaw sandbox, one per invocation: python3 attacks.py NAME [ARG].

Each prints one line: "CONTAINED <detail>" when the sandbox held, or
"ESCAPED <detail>" when it did not. The test around it checks the line.
"""
import ctypes
import errno
import os
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86_64 system call numbers
NR = dict(mount=165, umount2=166, unshare=272, setns=308, ptrace=101, init_module=175,
          finit_module=313, delete_module=176, keyctl=250, add_key=248, bpf=321,
          perf_event_open=298, userfaultfd=323, process_vm_readv=310, chroot=161,
          pivot_root=155, sethostname=170, open_by_handle_at=304, kexec_load=246,
          reboot=169, clone=56, prlimit64=302, iopl=172, ioperm=173, syslog=103, swapon=167, acct=163,
          io_uring_setup=425, socket=41, setrlimit=160)
AF_VSOCK, AF_NETLINK, NETLINK_AUDIT, RLIMIT_CORE = 40, 16, 9, 4


def syscall(name, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(NR[name], *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return rc, ctypes.get_errno()


def expect_errno(name, want, *args):
    rc, err = syscall(name, *args)
    if rc == -1 and err in want:
        return "CONTAINED %s: %s" % (name, errno.errorcode[err])
    return "ESCAPED %s returned %d errno %d" % (name, rc, err)


def expect_oserror(fn, want, what):
    try:
        fn()
    except OSError as e:
        if e.errno in want:
            return "CONTAINED %s: %s" % (what, errno.errorcode[e.errno])
        return "ESCAPED %s failed with unexpected %s" % (what, e)
    return "ESCAPED %s succeeded" % what


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data=b"x"):
    with open(path, "wb") as f:
        f.write(data)


CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
EPERM = {errno.EPERM}


def attack(name, arg):
    if name == "read_shadow":
        return expect_oserror(lambda: read_file("/etc/shadow"), {errno.ENOENT}, "read /etc/shadow")
    if name == "read_host_file":
        return expect_oserror(lambda: read_file(arg), {errno.ENOENT}, "read host file " + arg)
    if name == "write_usr":
        return expect_oserror(lambda: write_file("/usr/bin/thaw-was-here"), {errno.EROFS, errno.EACCES}, "write /usr")
    if name == "write_task":
        return expect_oserror(lambda: write_file("/var/task/thaw-was-here"), {errno.EROFS, errno.EACCES}, "write /var/task")
    if name == "write_submount":
        # A host file system mounted below the code directory, open to all.
        return expect_oserror(lambda: write_file("/var/task/mounted/x"), {errno.EROFS}, "write below a read-only bind")
    if name == "write_root":
        return expect_oserror(lambda: write_file("/thaw-was-here"), {errno.EROFS, errno.EACCES}, "write /")
    if name == "list_host_processes":
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        return "CONTAINED pids %s" % pids if pids == [1] else "ESCAPED sees pids %s" % pids
    if name == "read_init_environ":
        env = read_file("/proc/1/environ")
        return "ESCAPED host environ visible" if arg.encode() in env else "CONTAINED /proc/1 is the instance"
    if name == "signal_host_pid":
        return expect_oserror(lambda: os.kill(int(arg), 0), {errno.ESRCH}, "kill host pid " + arg)
    if name == "ptrace":
        return expect_errno("ptrace", EPERM, 16, 1, 0, 0)  # PTRACE_ATTACH to pid 1
    if name == "mount":
        return expect_errno("mount", EPERM, b"none", b"/tmp", b"tmpfs", 0, 0)
    if name == "umount":
        return expect_errno("umount2", EPERM, b"/usr", 2)
    if name == "unshare":
        return expect_errno("unshare", EPERM, CLONE_NEWUSER | CLONE_NEWNS)
    if name == "clone_newuser":
        return expect_errno("clone", EPERM, CLONE_NEWUSER | 17, 0, 0, 0, 0)
    if name == "setns":
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        return expect_errno("setns", EPERM, fd, 0)
    if name == "chroot":
        return expect_errno("chroot", EPERM, b"/tmp")
    if name == "pivot_root":
        return expect_errno("pivot_root", EPERM, b"/tmp", b"/tmp")
    if name == "load_module":
        fd = os.open("/dev/null", os.O_RDONLY)
        a = expect_errno("finit_module", EPERM, fd, b"", 0)
        b = expect_errno("init_module", EPERM, 0, 0, b"")
        return a if a.startswith("ESCAPED") else b
    if name == "connect_host_port":
        s = socket.socket()
        s.settimeout(2)
        return expect_oserror(lambda: s.connect(("127.0.0.1", int(arg))), {errno.ECONNREFUSED}, "connect 127.0.0.1:" + arg)
    if name == "connect_outside":
        s = socket.socket()
        s.settimeout(2)
        return expect_oserror(lambda: s.connect((arg, 80)), {errno.ENETUNREACH, errno.EHOSTUNREACH}, "connect " + arg)
    if name == "network_interfaces":
        names = sorted(n for _, n in socket.if_nameindex())
        return "CONTAINED interfaces %s" % names if names == ["lo"] else "ESCAPED interfaces %s" % names
    if name == "dev_mem":
        for dev in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/vda", "/dev/sda", "/dev/kvm"):
            try:
                os.open(dev, os.O_RDONLY)
                return "ESCAPED opened " + dev
            except OSError as e:
                if e.errno != errno.ENOENT:
                    return "ESCAPED %s: unexpected %s" % (dev, e)
        return "CONTAINED no host devices"
    if name == "mknod":
        return expect_oserror(lambda: os.mknod("/tmp/mem", 0o600 | 0o020000, os.makedev(1, 1)), EPERM, "mknod /dev/mem")
    if name == "raw_socket":
        return expect_oserror(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), EPERM, "raw socket")
    if name == "packet_socket":
        return expect_oserror(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0), {errno.EAFNOSUPPORT}, "packet socket")
    if name == "io_uring":
        params = ctypes.create_string_buffer(120)  # struct io_uring_params
        return expect_errno("io_uring_setup", EPERM, 8, params)
    if name == "vsock":
        # AF_VSOCK, with high bits set by hand too: the kernel reads an int.
        first = expect_errno("socket", {errno.EAFNOSUPPORT}, AF_VSOCK, socket.SOCK_STREAM, 0)
        if not first.startswith("CONTAINED"):
            return first
        return expect_errno("socket", {errno.EAFNOSUPPORT}, (1 << 32) | AF_VSOCK, socket.SOCK_STREAM, 0)
    if name == "netlink_audit":
        return expect_errno("socket", {errno.EPROTONOSUPPORT}, AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    if name == "netlink_route":
        # What getaddrinfo and interface listings use stays open.
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        s.close()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.close()
        return "CONTAINED netlink route and unix sockets open as before"
    if name == "core_dump":
        class Rlimit(ctypes.Structure):
            _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]
        zero = Rlimit(0, 0)
        # RLIMIT_CORE set to 0 would let a piped core_pattern helper run again.
        for call, args in (("setrlimit", (RLIMIT_CORE, ctypes.byref(zero))),
                           ("setrlimit", ((1 << 32) | RLIMIT_CORE, ctypes.byref(zero))),
                           ("prlimit64", (0, RLIMIT_CORE, ctypes.byref(zero), None))):
            got = expect_errno(call, EPERM, *args)
            if not got.startswith("CONTAINED"):
                return got
        import resource
        os.chdir("/tmp")
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), 11)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.WCOREDUMP(status) or os.path.exists("/tmp/core"):
            return "ESCAPED a crash dumped core (status %d)" % status
        return "CONTAINED crash without a core dump (limit %s): EPERM" % (resource.getrlimit(resource.RLIMIT_CORE),)
    if name == "sethostname":
        return expect_errno("sethostname", EPERM, b"pwned", 5)
    if name == "write_proc_sys":
        return expect_oserror(lambda: write_file("/proc/sys/kernel/hostname", b"pwned"), {errno.EROFS, errno.EACCES, errno.EPERM}, "write /proc/sys")
    if name == "sysrq":
        return expect_oserror(lambda: write_file("/proc/sysrq-trigger", b"h"), {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT}, "write /proc/sysrq-trigger")
    if name == "reach_sys":
        return expect_oserror(lambda: os.listdir("/sys"), {errno.ENOENT}, "list /sys")
    if name == "keyctl":
        return expect_errno("keyctl", EPERM, 0, -3)  # KEYCTL_GET_KEYRING_ID of the session keyring
    if name == "add_key":
        return expect_errno("add_key", EPERM, b"user", b"k", b"v", 1, -3)
    if name == "bpf":
        return expect_errno("bpf", EPERM, 0, 0, 0)
    if name == "perf_event_open":
        return expect_errno("perf_event_open", EPERM, 0, 0, -1, -1, 0)
    if name == "userfaultfd":
        return expect_errno("userfaultfd", EPERM, 0)
    if name == "process_vm_readv":
        return expect_errno("process_vm_readv", EPERM, 1, 0, 0, 0, 0, 0)
    if name == "open_by_handle_at":
        return expect_errno("open_by_handle_at", EPERM, 0, 0, 0)
    if name == "kexec":
        return expect_errno("kexec_load", EPERM, 0, 0, 0, 0)
    if name == "reboot":
        return expect_errno("reboot", EPERM, 0xfee1dead, 672274793, 0x1234567, 0)
    if name == "iopl":
        return expect_errno("iopl", EPERM, 3)
    if name == "syslog":
        return expect_errno("syslog", EPERM, 3, 0, 0)
    if name == "swapon":
        return expect_errno("swapon", EPERM, b"/tmp/swap", 0)
    if name == "symlink_out":
        # The code package holds a link to a host path: inside it leads nowhere.
        return expect_oserror(lambda: read_file("/var/task/escape-link"), {errno.ENOENT}, "follow /var/task/escape-link")
    if name == "raise_rlimit":
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        core = resource.getrlimit(resource.RLIMIT_CORE)
        if (soft, hard) != (1024, 1024) or core != (1, 1):
            return "ESCAPED limits not applied: nofile %s core %s" % ((soft, hard), core)

        class Rlimit(ctypes.Structure):
            _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]
        raised = Rlimit(hard + 1, hard + 1)
        # prlimit64 directly: Python turns EPERM into a ValueError.
        return expect_errno("prlimit64", EPERM, 0, 7, ctypes.byref(raised), None)
    if name == "capabilities":
        status = dict(l.split(":\t", 1) for l in read_file("/proc/self/status").decode().splitlines() if ":\t" in l)
        want = {"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
                "CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
        bad = {k: status.get(k) for k, v in want.items() if status.get(k, "").strip() != v}
        return "ESCAPED %s" % bad if bad else "CONTAINED no capabilities, no_new_privs, seccomp on"
    if name == "setuid_binary":
        os.makedirs("/tmp/m", exist_ok=True)
        out = os.popen("/usr/bin/mount -t tmpfs none /tmp/m 2>&1; echo rc=$?").read()
        mounted = any(" /tmp/m " in l for l in read_file("/proc/self/mounts").decode().splitlines())
        if mounted or out.strip().endswith("rc=0"):
            return "ESCAPED setuid mount worked: " + out
        return "CONTAINED setuid mount refused"
    if name == "tiocsti":
        import fcntl
        import termios
        return expect_oserror(lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x"), {errno.EPERM}, "ioctl(TIOCSTI)")
    if name == "i386_syscall":
        # int 0x80 is the i386 ABI: the filter kills the process (SIGSYS).
        code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (getpid); int 0x80; ret
        import mmap
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        ctypes.CFUNCTYPE(ctypes.c_long)(addr)()
        return "ESCAPED int 0x80 returned"
    if name == "write_secret":
        write_file("/tmp/secret", arg.encode())
        return "CONTAINED wrote"
    if name == "read_other_tmp":
        found = [f for f in os.listdir("/tmp") if f == "secret"]
        return "ESCAPED sees %s" % found if found else "CONTAINED /tmp is private"
    if name == "fill_tmp":
        written = 0
        chunk = b"\0" * (1 << 20)
        try:
            with open("/tmp/fill", "wb") as f:
                while written < (1 << 30):
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EFBIG):
                return "CONTAINED stopped after %d MB: %s" % (written >> 20, errno.errorcode[e.errno])
            return "ESCAPED unexpected %s" % e
        return "ESCAPED wrote %d MB" % (written >> 20)
    if name == "memory_bomb":
        hog = []
        while True:
            hog.append(bytearray(16 << 20))
    if name == "fork_bomb":
        children = 0
        refused = None
        while children < 100000:
            try:
                pid = os.fork()
            except OSError as e:
                refused = e
                break
            if pid == 0:
                import time
                time.sleep(60)
                os._exit(0)
            children += 1
        if refused and refused.errno == errno.EAGAIN:
            return "CONTAINED fork refused after %d children" % children
        return "ESCAPED forked %d children (%s)" % (children, refused)
    return "UNKNOWN attack " + name


if __name__ == "__main__":
    print(attack(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""), flush=True)
