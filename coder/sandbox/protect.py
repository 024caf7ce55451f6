"""Kernel protections applied to each sandboxed child: rlimits, Landlock, capabilities, seccomp, netns.

Everything here runs either once in the fork server (`enter_network_namespace`, `probe`, building a
`Confinement`) or in a freshly forked child just before untrusted code runs (`Confinement.apply`).
Plain ctypes except seccomp, which uses `pyseccomp` (a ctypes binding to libseccomp.so.2).

Each page a child writes costs it a copy-on-write fault (several microseconds here) and the
child's Python code is what writes them, so the server prepares every ctypes structure and
function pointer once and a child only makes the system calls.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
import signal
import sys
import types

_libc = ctypes.CDLL(None, use_errno=True)
# Resolved here, in the server: CDLL resolves a function on first attribute access, and a child
# doing that would redo (and copy-on-write) the lookup every time.
_syscall, _prctl, _capset = _libc.syscall, _libc.prctl, _libc.capset
_syscall.restype = ctypes.c_long
_HIGH_FD = 1000  # prepared descriptors live above the 0-5 a child rearranges

# Syscall numbers shared by x86_64 and aarch64 (the generic table).
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_THREAD = 0x20000, 0x10000000, 0x40000000, 0x10000

# Landlock filesystem rights (uapi/linux/landlock.h), by ABI version.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_ABI1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV

# Read-only system paths a Python program may need after the fork (lazy stdlib imports, devices).
_SYSTEM_READ_DIRS = ("/usr", "/lib", "/lib64", "/lib32")
_DEVICES_RW = ("/dev/null",)
_DEVICES_RO = ("/dev/urandom", "/dev/random", "/dev/zero")

# Syscalls that change host state outside the temp dir, or reach other processes: denied to the
# zygote (which never runs untrusted code) and so to every child it forks.
_DENIED = (
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_getfd", "pidfd_send_signal", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "reboot", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
    "request_key", "init_module", "finit_module", "delete_module", "kexec_load", "swapon", "swapoff",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "chmod", "fchmod", "fchmodat",
    "chown", "fchown", "lchown", "fchownat", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "lremovexattr", "fremovexattr", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat",
    "socket", "settimeofday", "clock_settime", "sethostname", "setdomainname", "acct", "quotactl",
    "fanotify_init", "name_to_handle_at", "open_by_handle_at", "move_mount", "open_tree", "fsopen",
    "fsmount", "fspick", "mount_setattr", "syslog", "vhangup", "setpriority", "ioperm", "iopl", "vfork",
)
# Signals to any process (own process group included: a run is one process, it needs none).
_SIGNALS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
# What the zygote itself needs (forking, a pidfd per child, the child's own prctl calls), denied to
# each child by a second, small filter it adds before untrusted code runs.
_DENIED_IN_RUNS = (
    "fork", "pidfd_open",
    "prctl",  # e.g. clearing PR_SET_PDEATHSIG to outlive a dead zygote
)


# Numeric libraries size their thread pools to the machine when imported (OpenBLAS, OpenMP, MKL,
# numexpr): dozens of threads, each reserving its own buffers, would exhaust a run's address-space
# limit on a big machine and take cores that belong to other runs. Every run inherits this environment.
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")}


def landlock_abi() -> int:
    """Landlock ABI version of the running kernel, 0 when unavailable."""
    version = _syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def seccomp_available() -> bool:
    """True when pyseccomp and libseccomp.so.2 load."""
    try:
        pyseccomp = _import_pyseccomp()
        pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        return True
    except Exception:  # ImportError or OSError (libseccomp.so.2 missing)
        return False


# The sonames pyseccomp looks up, fixed by the libraries' ABIs (glibc; libseccomp 2.x).
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _import_pyseccomp():
    """pyseccomp, imported without `ctypes.util` where that is not imported yet: pyseccomp's import only
    resolves libc and libseccomp with `ctypes.util.find_library`, which runs `ldconfig -p` each time (~5 ms
    of every fork server's start-up), and `ctypes.util` imports subprocess and tempfile, with shutil and
    the compressors it loads: ~1 MB in the fork server and its zygote, which every run pays to fork and
    to end. A soname that loads is used as is; anything else (musl, another libseccomp) asks the real
    find_library."""
    if "pyseccomp" in sys.modules:
        return sys.modules["pyseccomp"]
    real = sys.modules.get("ctypes.util")
    stub = types.ModuleType("ctypes.util")

    def find_library(name: str):
        soname = _SONAMES.get(name)
        if soname:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        if real is not None:
            return fallback(name)
        restore()  # the real module, imported only now
        from ctypes import util

        return util.find_library(name)

    if real is None:  # pyseccomp's `import ctypes.util` finds the stub
        stub.find_library = find_library
        sys.modules["ctypes.util"] = ctypes.util = stub
    else:
        fallback, real.find_library = real.find_library, find_library

    def restore() -> None:
        if real is not None:
            real.find_library = fallback
        elif sys.modules.get("ctypes.util") is stub:
            del sys.modules["ctypes.util"]
            del ctypes.util

    try:
        import pyseccomp
    finally:
        restore()
    return pyseccomp


def enter_network_namespace() -> bool:
    """Move the calling (fork server) process into a fresh network namespace with no interfaces up."""
    flags = _CLONE_NEWNET if os.geteuid() == 0 else _CLONE_NEWUSER | _CLONE_NEWNET
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        return False
    if flags & _CLONE_NEWUSER:  # keep our own uid inside so files we create stay ours
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError:
            return False
    return True


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock_rights(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def read_paths(exclude: str | None = None) -> list[str]:
    """Existing directories the child may read: the Python installation, sys.path, system libraries.

    `exclude` (a source checkout on sys.path, say) is left out: everything the child needs from it
    was imported by the fork server before forking. Directories inside another one on the list are
    dropped (one Landlock rule covers them), which saves every run a system call per directory.
    """
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM_READ_DIRS}
    dirs.update(p for p in sys.path if p and os.path.isabs(p))
    real = sorted({os.path.realpath(d) for d in dirs if os.path.isdir(d) and d != exclude})
    kept: list[str] = []
    for d in real:  # sorted, so an ancestor comes before what it contains
        if not any(d.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(d)
    return kept


class LandlockRules:
    """A Landlock policy prepared once in the fork server: the read-only rules' directory descriptors
    and ctypes structures. The zygote makes each child's ruleset from them (`ruleset`), and the child
    enters it (`restrict`)."""

    def __init__(self, readable: list[str], abi: int):
        self.handled = _landlock_rights(abi)
        self.attr, size = _RulesetAttr(self.handled, 0, 0), 8
        if abi >= 4:  # TCP bind/connect handled with no rule: no TCP at all
            self.attr.net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
        if abi >= 6:  # no abstract unix sockets or signals outside this domain
            self.attr.scoped, size = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL, 24
        self.size = ctypes.c_size_t(size)
        read_dir = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        wanted = [(d, read_dir) for d in readable]
        wanted += [(d, _FS_READ_FILE | _FS_WRITE_FILE) for d in _DEVICES_RW]
        wanted += [(d, _FS_READ_FILE) for d in _DEVICES_RO]
        self.rules: list[_PathBeneath] = []  # descriptors stay open for the server's lifetime
        self.paths: list[str] = []
        for path, rights in wanted:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
            os.close(fd)
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            self.rules.append(_PathBeneath(rights & self.handled, high))
            self.paths.append(path)
        self.workdir_rule = _PathBeneath(self.handled, -1)

    def ruleset(self, workdir: str) -> int:
        """In the zygote, before it forks the child for `workdir`: that child's ruleset (full access under
        `workdir`, read-only the prepared paths, nothing else); its descriptor, for `restrict`. Made here, the
        child makes one system call, not one per rule (and touches fewer of the zygote's pages)."""
        ruleset = _syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(self.attr), self.size, 0)
        if ruleset < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
        try:
            self.workdir_rule.parent_fd = os.open(workdir, os.O_PATH | os.O_CLOEXEC)
            try:
                for i, rule in enumerate((self.workdir_rule, *self.rules)):
                    if _syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
                        path = self.paths[i - 1] if i else workdir
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(self.workdir_rule.parent_fd)
        except BaseException:
            os.close(ruleset)
            raise
        return ruleset

    @staticmethod
    def restrict(ruleset: int) -> None:
        """In the child: enter the Landlock domain of `ruleset` (from `ruleset`), for good."""
        if _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAPS_NONE = (_CapHeader(0x20080522, 0), (_CapData * 2)())  # _LINUX_CAPABILITY_VERSION_3, all zero


def drop_capabilities() -> None:
    """Drop every capability (root stays uid 0 but loses its powers: no CAP_KILL, DAC override...)."""
    header, data = _CAPS_NONE
    if _capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def compile_seccomp(stage: str) -> bytes:
    """BPF program for the zygote (`stage="zygote"`: exec, sockets, signals, host-changing syscalls)
    or the extra one each run adds (`"run"`: process creation, pidfd_open, prctl).

    Built once in the fork server (libseccomp takes milliseconds). The kernel compiles a filter
    when it is loaded, so the big one is loaded once, by the zygote, and children inherit it.
    """
    sc = _import_pyseccomp()
    f = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in (_DENIED + _SIGNALS) if stage == "zygote" else _DENIED_IN_RUNS:
        try:
            f.add_rule(deny, name)
        except Exception:  # syscall absent on this architecture (e.g. fork on aarch64)
            continue
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone, filtered below
    if stage == "run":
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))  # threads yes, processes no
    r, w = os.pipe()
    try:
        with os.fdopen(w, "wb") as out:
            f.export_bpf(out)
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(r)
    return b"".join(chunks)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A compiled filter in the ctypes form the kernel takes, built once in the server."""

    def __init__(self, bpf: bytes):
        self.buf = ctypes.create_string_buffer(bpf, len(bpf))
        self.prog = _SockFprog(len(bpf) // 8, ctypes.addressof(self.buf))

    def load(self) -> None:
        """Install the filter on this process (needs no_new_privs)."""
        if _prctl(22, 2, ctypes.byref(self.prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def raise_open_files_limit(cap: int = 1 << 16) -> None:
    """In the fork server: raise the soft RLIMIT_NOFILE towards the hard one (it holds ~6 descriptors
    per pooled or running child, and its prepared ones live at `_HIGH_FD` and above); an error saying
    what to do when the hard limit is below what it needs."""
    needed = _HIGH_FD + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    if soft < needed:
        raise OSError(f"the sandbox needs at least {needed} open files (RLIMIT_NOFILE) but this process may "
                      f"have at most {hard}; raise the limit where proofcode starts (`ulimit -n {needed}` in "
                      "its shell, LimitNOFILE= in a systemd unit, --ulimit nofile= for docker)")


def set_rlimits(cpu_s: float, memory_mb: int, file_size_mb: int, open_files: int) -> None:
    """Apply the resource limits of one run (hard = soft, so the program cannot raise them)."""
    cpu = max(1, int(cpu_s + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    mem = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    size = file_size_mb << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_SIGKILL = int(signal.SIGKILL)


def die_with_parent() -> None:
    """SIGKILL this child if the fork server goes away."""
    _prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)


def no_new_privs() -> None:
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


class Confinement:
    """Every kernel protection but rlimits, prepared once in the fork server.

    `apply_zygote` once in the zygote: no new privileges, no capabilities, the big seccomp filter.
    `apply_run` in each child it forks: its own Landlock domain (its temp dir writable, other runs'
    invisible), then the small filter that takes away process creation and prctl.
    """

    def __init__(self, readable: list[str], landlock_abi_version: int, seccomp: bool, drop_caps: bool):
        os.environ.update(SINGLE_THREADED)  # in the fork server, before the zygote forks: runs inherit it
        self.landlock = LandlockRules(readable, landlock_abi_version) if landlock_abi_version >= 1 else None
        self.seccomp_zygote = SeccompProgram(compile_seccomp("zygote")) if seccomp else None
        self.seccomp_run = SeccompProgram(compile_seccomp("run")) if seccomp else None
        self.drop_caps = drop_caps

    def descriptors(self) -> list[int]:
        """Descriptors the zygote must keep open for its children (Landlock's prepared paths)."""
        return [rule.parent_fd for rule in self.landlock.rules] if self.landlock else []

    def apply_zygote(self) -> None:
        no_new_privs()
        if self.drop_caps:
            drop_capabilities()
        if self.seccomp_zygote is not None:
            self.seccomp_zygote.load()

    def ruleset(self, workdir: str) -> int | None:
        """In the zygote: the Landlock ruleset of the child it forks next for `workdir` (None without Landlock)."""
        return self.landlock.ruleset(workdir) if self.landlock is not None else None

    def apply_run(self, ruleset: int | None) -> None:
        """In the child, before untrusted code (and after every prctl it needs); `ruleset` from `ruleset`."""
        if ruleset is not None:
            LandlockRules.restrict(ruleset)
        if self.seccomp_run is not None:
            self.seccomp_run.load()


def probe(net_namespace: bool) -> dict[str, bool]:
    """Which protections this machine provides (called once in the fork server)."""
    seccomp = seccomp_available()
    landlock = landlock_abi() >= 1
    return {
        "rlimits": True,
        "seccomp": seccomp,  # no fork/exec/sockets/signals to others/host-changing syscalls
        "landlock": landlock,  # writes only in the run's temp dir; reads only Python + system libs
        "net_namespace": net_namespace,
        "no_network": seccomp or net_namespace,
        "drop_capabilities": True,
    }
