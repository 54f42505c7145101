"""The kernel jail of a worker: Landlock on files, TCP and signals; seccomp; PID, IPC and network namespaces.

The audit hook (guard.py) sees only what Python reports; torch's C++ (`aten::from_file`,
`torch.jit.save`, a shell started by a torch helper) does not pass through it. The kernel does:
before any candidate text exists in the worker, `python -m evaluator.sandbox.jail POLICY IN OUT DATA`
restricts its own (single) thread with Landlock and only then runs the worker module. The
restriction is inherited by every thread and process the worker starts and cannot be lifted.

The policy (built by the parent, `worker_policy`): read and execute beneath the Python
installation, the library directories on sys.path, the project's own packages (through a folder
of links, so that the repository root and the user's data file beside it stay unreadable, and not
even listable), the system's libraries, compiler toolchain and headers, /proc and /sys; read,
write and ioctl on a few device files (/dev/null..., /dev/nvidia* for CUDA); everything inside the
worker's own folder. Everything else is refused: the dataset cache, the user's --data file, other
workers' folders. With ABI >= 4 TCP bind and connect are refused (no port is allowed), with
ABI >= 6 signals and abstract unix sockets may not leave the worker's domain.

Processes: the worker runs as PID 1 of its own PID namespace (`unshare --pid --fork
--kill-child --mount-proc`, inside a user namespace where the system allows one, which also takes
away the capabilities of a root parent), so that killing it kills every process it started,
`setsid` or not, and so that it sees (in /proc) and can signal no process outside; in an IPC
namespace of its own (`--ipc`: a SysV segment or message queue one worker makes is gone with it,
never seen by the next); and in an empty network namespace where possible. seccomp
(`seccomp_program`) refuses keyrings (which outlive processes), io_uring, bpf, perf events,
ptrace and process_vm_*, and sockets of every family but IPv4/IPv6.

Threat model: the candidate may run arbitrary native code in the worker (ctypes, raw syscalls,
a shell; README, "Threat model"). Everything here is enforced by the kernel on the worker's one
thread before any candidate text exists, inherited by all it starts, and cannot be lifted from
inside; nothing rests on the audit hook (guard.py) or the static check, which are filters. The
channels, and what closes each (tests/test_jail_channels.py runs hostile native code against them):
  files outside the worker's folder (labels, the dataset cache, other workers' folders, the repository):
      Landlock's file rules (`worker_policy`); mounting is refused to a Landlock domain
  TCP to the host or the world:       Landlock (ABI >= 4, no port allowed) and an empty network namespace
  unix sockets (a docker or database socket at a path, which Landlock does not govern), netlink,
  packet, vsock and every other family but IPv4/IPv6:  seccomp refuses socket(2) (EACCES);
      socketpair(2) and pipes stay (multiprocessing, compile workers)
  io_uring (it makes sockets and opens files without those syscalls):  seccomp
  SysV shared memory, semaphores, message queues, POSIX queues (they outlive processes):  the IPC
      namespace (gone with the worker, never seen by another); Landlock also refuses opening a POSIX queue
  keyrings (they outlive processes and are shared by a user's processes):  seccomp (add_key,
      request_key, keyctl)
  processes that outlive the worker (setsid, double fork):  the PID namespace; the parent kills its init
  signals to the parent or anyone (kill(-1), kill(pid)):  the PID namespace (no process outside is
      visible) and Landlock's signal scope (ABI >= 6)
  another process's memory (ptrace, process_vm_readv/writev), the host's /proc (the parent's
      environment):  seccomp, the PID namespace and its own /proc (--mount-proc)
  bpf, perf events (side channels on the kernel and other processes), userfaultfd (an exploit aid),
      kexec:  seccomp
  the i386 and x32 ABIs, whose syscall numbers the filter would not match:  seccomp refuses them whole
  privileges:  no_new_privs, and a user namespace takes a root parent's capabilities away
The worker holds no resolved libc handle of this module once jailed (`forget_libc`), a filter-level
nicety: a candidate can load libc itself, and what it can do with it is the list above.

Library: a ctypes binding of the three syscalls (below, about 60 lines), not the PyPI `landlock`
package: that is a development release (1.0.0.dev5) with few users, and we need the newest ABI
features (TCP, scoping, ioctl on devices), exact control of which rights each ABI handles, and
nothing we have to trust beyond the kernel's documented structures (include/uapi/linux/landlock.h).
"""

import ctypes
import functools
import importlib.util
import os
import platform
import runpy
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from pydantic import BaseModel, Field

# include/uapi/linux/landlock.h
FS = {
    "execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3, "remove_dir": 1 << 4,
    "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7, "make_reg": 1 << 8, "make_sock": 1 << 9,
    "make_fifo": 1 << 10, "make_block": 1 << 11, "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14,
    "ioctl_dev": 1 << 15,
}
FS_SINCE_ABI = {"refer": 2, "truncate": 3, "ioctl_dev": 5}  # the others exist since ABI 1
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446), "arm64": (444, 445, 446)}
PR_SET_NO_NEW_PRIVS = 38
# seccomp (linux/audit.h, asm/unistd.h): per machine, the audit architecture, socket(2)'s number,
# and the syscalls the worker is refused outright, by name: the kernel channels a worker could use
# to reach another worker or outlive its own run, and interfaces it has no business with.
SECCOMP_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "arm64": 0xC00000B7}
SOCKET_SYSCALL = {"x86_64": 41, "aarch64": 198, "arm64": 198}
REFUSED_SYSCALLS = {  # name: (x86_64, aarch64), and why
    "add_key": (248, 217),  # keyrings outlive processes and are shared by a user's processes
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "io_uring_setup": (425, 425),  # io_uring makes sockets and opens files without those syscalls
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),  # counters of other processes and the kernel: a side channel
    "userfaultfd": (323, 282),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
}
SOCKET_FAMILIES_ALLOWED = (2, 10)  # AF_INET, AF_INET6: Landlock refuses TCP, the network namespace is empty
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, EACCES = 1, 13
X32_SYSCALL_BIT = 0x40000000

READ = ("read_file", "read_dir", "execute")
DEVICE = ("read_file", "write_file", "truncate")
GPU_DEVICE = DEVICE + ("ioctl_dev",)
FILE_RIGHTS = ("execute", "write_file", "read_file", "truncate", "ioctl_dev")  # all a rule on a file may hold
# The worker's folder: everything but device nodes and sockets.
WRITE = tuple(r for r in FS if r not in ("make_char", "make_block", "make_sock", "ioctl_dev"))

SYSTEM_READABLE = (
    "/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32", "/usr/libexec", "/usr/local/lib",
    "/usr/bin", "/bin", "/usr/include", "/usr/local/include", "/usr/share/zoneinfo", "/usr/local/cuda",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    "/etc/ssl/openssl.cnf", "/etc/ssl/certs",  # openssl (inductor hashes headers with it); not /etc/ssl/private
    "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/sbin/ldconfig", "/usr/sbin/ldconfig",
    "/proc", "/sys",
)
SYSTEM_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
JAIL_MARKS = "EVOLVE_JAIL_MARKS"  # CLOCK_MONOTONIC seconds when jailing began and ended, for the worker to report
PROJECT_PACKAGES = ("evaluator", "components")  # what the worker imports from the project


class JailUnavailable(RuntimeError):
    """The kernel cannot enforce the jail; evaluating untrusted code would be unsafe."""


class JailPolicy(BaseModel):
    """What the worker may touch once jailed; paths that do not exist are skipped."""

    readable: list[str] = Field(description="read, list and execute beneath each")
    writable: list[str] = Field(description="every right but device nodes and sockets beneath each: the worker's folder")
    devices: list[str] = Field(description="device files to read, write (and, for GPUs, ioctl)")
    gpu_devices: list[str] = Field(default_factory=list, description="device files with ioctl, /dev/nvidia*")


# --- the binding ---------------------------------------------------------------------------------

class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(number: int, *args) -> int:
    result = _libc().syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none (old kernel, LSM not enabled)."""
    numbers = SYSCALLS.get(platform.machine())
    if numbers is None or sys.platform != "linux":
        return 0
    try:
        return _syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    except OSError:
        return 0  # ENOSYS: not built in; EOPNOTSUPP: not enabled at boot


def handled_fs(abi: int) -> int:
    return sum(bit for name, bit in FS.items() if abi >= FS_SINCE_ABI.get(name, 1))


def _mask(rights: tuple[str, ...], abi: int, is_dir: bool) -> int:
    allowed = rights if is_dir else tuple(r for r in rights if r in FILE_RIGHTS)
    return sum(FS[r] for r in allowed) & handled_fs(abi)


def restrict_self(policy: JailPolicy) -> int:
    """Apply the policy to this thread and all it starts from now on; returns the ABI used."""
    abi = landlock_abi()
    if abi < 1:
        raise JailUnavailable(unavailable_message())
    if len(os.listdir("/proc/self/task")) != 1:
        raise JailUnavailable("the jail must be entered while the worker has one thread (Landlock restricts the calling thread)")
    create, add_rule, restrict = SYSCALLS[platform.machine()]
    attr = _RulesetAttr(handled_fs(abi), NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        groups = ((policy.readable, READ), (policy.writable, WRITE), (policy.devices, DEVICE), (policy.gpu_devices, GPU_DEVICE))
        for paths, rights in groups:
            for path in paths:
                _add_path_rule(add_rule, ruleset, path, rights, abi)
        # No rule of type LANDLOCK_RULE_NET_PORT: every TCP bind and connect is refused.
        if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        _syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    install_seccomp_filter()
    try:  # the file system's root is in no rule: if it can be listed, the restriction did not take
        os.listdir("/")
    except PermissionError:
        return abi
    raise JailUnavailable("the Landlock restriction did not take effect (the root folder is still listable)")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF filter, as (code, jt, jf, k): a foreign ABI (i386, x32) gets nothing; each of
    REFUSED_SYSCALLS fails with EPERM; socket(2) of any family but IPv4/IPv6 with EACCES (AF_UNIX:
    Landlock does not govern connecting to a pathname socket, a docker or database socket the user
    may reach; AF_NETLINK, AF_PACKET, AF_VSOCK, ...: nothing a worker needs). socketpair(2) and
    pipes stay allowed (multiprocessing, compile workers). Everything else is allowed."""
    ld, jeq, jge, ja, ret = 0x20, 0x15, 0x35, 0x05, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JGE|K, JA, BPF_RET|K
    arch = SECCOMP_ARCH[machine]
    column = 0 if machine == "x86_64" else 1
    refuse, refuse_socket = SECCOMP_RET_ERRNO | EPERM, SECCOMP_RET_ERRNO | EACCES
    program = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, refuse),  # a foreign ABI: nothing
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jge, 0, 1, X32_SYSCALL_BIT) if machine == "x86_64" else (ja, 0, 0, 1),
        (ret, 0, 0, refuse),  # x32 syscalls on x86_64
    ]
    for numbers in REFUSED_SYSCALLS.values():
        program += [(jeq, 0, 1, numbers[column]), (ret, 0, 0, refuse)]
    families = SOCKET_FAMILIES_ALLOWED
    program += [
        (jeq, 0, 2 + len(families), SOCKET_SYSCALL[machine]),  # not socket(2): to the final allow
        (ld, 0, 0, 16),  # seccomp_data.args[0], low 32 bits: the address family
        *[(jeq, len(families) - i, 0, family) for i, family in enumerate(families)],
        (ret, 0, 0, refuse_socket),
        (ret, 0, 0, SECCOMP_RET_ALLOW),
    ]
    return program


def install_seccomp_filter() -> None:
    """seccomp on this thread and all it starts (seccomp_program); cannot be lifted."""
    program = seccomp_program(platform.machine())
    filters = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
    fprog = _SockFprog(len(program), filters)
    if _libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise JailUnavailable(f"could not install the seccomp filter: {os.strerror(err)}")


def _add_path_rule(add_rule: int, ruleset: int, path: str, rights: tuple[str, ...], abi: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        rule = _PathBeneathAttr(_mask(rights, abi, os.path.isdir(path)), fd)
        _syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)


def unavailable_message() -> str:
    return (
        "this kernel does not offer Landlock (Linux >= 5.13 with 'landlock' among the LSMs, "
        "e.g. the boot option lsm=landlock,...; see /sys/kernel/security/lsm), so the evaluator cannot "
        "jail workers and refuses to run candidate code. For a trusted single user who accepts that "
        "candidates can then read and write anything the user can: --unjailed-trusted-code "
        "(WorkerLimits.unjailed_trusted_code)."
    )


# --- namespaces ------------------------------------------------------------------------------------

class Namespaces(BaseModel):
    prefix: list[str] = Field(description="the unshare command line the worker starts under")
    pid: bool = Field(description="the worker is PID 1 of its own PID namespace: its processes die with it")
    ipc: bool = Field(description="SysV shared memory, semaphores, message queues and POSIX queues of its own")
    network: bool = Field(description="the worker has an empty network namespace")
    user: bool = Field(description="inside a user namespace (no capabilities outside it)")


@functools.cache
def namespaces(network: bool = True) -> Namespaces | None:
    """The best `unshare` prefix this system allows, probed once; None where no PID namespace works."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    # --mount-proc: a /proc of the worker's namespace only; the host's would show the parent's
    # environment (its API key), which Landlock does not hide from a same-user process.
    # --ipc: SysV IPC objects (and POSIX message queues) outlive processes; in the host's namespace
    # one worker's segment is the next worker's channel.
    pid = ["--ipc", "--pid", "--fork", "--kill-child", "--mount-proc"]
    host_ipc = os.readlink("/proc/self/ns/ipc")
    candidates = []
    for user in (["--user", "--map-root-user"], []):
        for net in ((["--net"], []) if network else ([],)):
            candidates.append(([unshare, *user, *net, *pid], bool(user), bool(net)))
    for prefix, user, net in candidates:
        try:
            probe = subprocess.run([*prefix, "sh", "-c", "echo $$; readlink /proc/self/ns/ipc"],
                                   capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        lines = probe.stdout.split()
        # the shell is PID 1 of a new PID namespace, in an IPC namespace that is not the host's
        if probe.returncode == 0 and len(lines) == 2 and lines[0] == "1" and lines[1] != host_ipc:
            return Namespaces(prefix=prefix, pid=True, ipc=True, network=net, user=user)
    return None


def no_pid_namespace_message() -> str:
    return (
        "this system allows no PID and IPC namespace for the worker (`unshare --ipc --pid --fork` needs root or "
        "unprivileged user namespaces: sysctl user.max_user_namespaces > 0, and on Ubuntu >= 23.10 "
        "kernel.apparmor_restrict_unprivileged_userns=0), so processes and shared-memory segments a candidate "
        "creates could outlive its worker; the evaluator refuses to run candidate code. For a trusted single user: "
        "--unjailed-trusted-code (WorkerLimits.unjailed_trusted_code)."
    )


# --- the policy -------------------------------------------------------------------------------------

def library_paths() -> list[str]:
    """sys.path entries that belong to the Python installation or are package directories."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    found = []
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        inside = any(real == p or real.startswith(p + os.sep) for p in prefixes)
        if inside or "site-packages" in real or "dist-packages" in real:
            found.append(real)
    return found


def project_package_dirs() -> dict[str, str]:
    """The project's own packages the worker imports, by name: their real directories."""
    dirs = {}
    for name in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise JailUnavailable(f"cannot find the package {name!r} to give the worker")
        dirs[name] = os.path.realpath(next(iter(spec.submodule_search_locations)))
    return dirs


def link_packages(folder: Path) -> None:
    """A folder of links to the project's packages: the worker's sys.path entry for them.

    Listing it shows only these names; the links' targets are readable, their siblings (the
    repository root's other files, a --data file there) are not.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in project_package_dirs().items():
        (folder / name).symlink_to(target, target_is_directory=True)


def gpu_device_files() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def worker_policy(workdir: Path, packages: Path, cuda: bool) -> JailPolicy:
    paths = sysconfig.get_paths()
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
              paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"], paths["include"]}
    readable = sorted({os.path.realpath(p) for p in python} | set(library_paths()) | {str(packages)}
                      | set(project_package_dirs().values())) + list(SYSTEM_READABLE)
    if cuda:
        readable += ["/usr/local/nvidia", "/usr/lib/wsl", "/etc/OpenCL"] + [str(p) for p in Path("/usr/local").glob("cuda*")]
    return JailPolicy(
        readable=readable,
        writable=[str(workdir)],
        devices=list(SYSTEM_DEVICES),
        gpu_devices=gpu_device_files() if cuda else [],
    )


def ensure_unreadable(policy: JailPolicy, secrets: list[Path]) -> None:
    """Refuse a policy under which the worker could read the dataset cache or a labelled data file."""
    for secret in secrets:
        real = os.path.realpath(secret)
        for root in policy.readable + policy.writable:
            root = os.path.realpath(root)
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                raise JailUnavailable(
                    f"{secret} holds test labels but lies beneath {root}, which the worker may read: "
                    "move it (EVOLVE_CACHE=DIR for the dataset cache) outside the Python installation and the project"
                )


# --- the entry point ---------------------------------------------------------------------------------

def forget_libc() -> None:
    """Leave no resolved libc handle in the worker's reach (this module runs as `__main__`).

    A filter-level nicety, no guarantee: a candidate that runs native code can load libc itself.
    What it can then do is bounded by Landlock, seccomp and the namespaces, set above."""
    _libc.cache_clear()
    landlock_abi.cache_clear()
    for name in ("_libc", "_syscall"):
        globals().pop(name, None)


def main() -> None:
    """`python -m evaluator.sandbox.jail POLICY_JSON|unjailed IN_FD OUT_FD`: jail, then run the worker."""
    policy_text, worker_args = sys.argv[1], sys.argv[2:]
    started = time.monotonic()
    if policy_text != "unjailed":
        restrict_self(JailPolicy.model_validate_json(policy_text))
    forget_libc()
    os.environ[JAIL_MARKS] = f"{started},{time.monotonic()}"  # the worker reports them (bench/device_budget.py)
    sys.argv = ["evaluator.sandbox.worker", *worker_args]
    runpy.run_module("evaluator.sandbox.worker", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
