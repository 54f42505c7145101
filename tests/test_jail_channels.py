"""Hostile native code in the real jail (issue 25): every kernel channel between workers, and out
of a worker, is shut by the kernel, not by the static check or the audit hook.

Each test starts the real SandboxedWorker and speaks only `setup` and `warmup` to it. The
component set's `architecture` runs the hostile code when the harness builds the network during
the warm-up: it starts a fresh interpreter through a torch helper (tests/redteam/jail_cases.py,
SHELL_HELPER), where no audit hook exists and ctypes and raw syscalls (x86_64 numbers) are at
hand, in the worker's jail (Landlock, seccomp, namespaces: all inherited). The probe reports each
syscall's result (the value, or minus the errno) as a Python literal between PROBE and ENDPROBE on
its stderr, which the helper raises, so the worker's error message carries it. A test finds the
report or fails: the probe reached its syscalls.

Where the refusal is seccomp's, the same probe also runs here, outside any jail, as a control:
that the host kernel answers differently shows the refusal is the jail's (where the host itself
refuses a syscall, the test says so and skips the comparison).
"""

import ast
import ctypes
import errno
import os
import platform
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from evaluator.component_set import ComponentSet
from evaluator.sandbox import jail
from evaluator.sandbox.limits import WorkerLimits
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure
from tests.process_support import processes_with
from tests.redteam.jail_cases import SHELL_HELPER

pytestmark = pytest.mark.skipif(
    jail.landlock_abi() < 1 or jail.namespaces() is None or platform.machine() != "x86_64",
    reason="no kernel jail here (or not x86_64, whose syscall numbers the probes use)",
)

LIMITS = WorkerLimits(setup_seconds=120, warmup_seconds=120, memory_bytes=6 << 30, output_bytes=8 << 20)
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
O_RDWR, O_WRONLY, O_CREAT, O_EXCL = 2, 1, 0o100, 0o200
# x86_64 (asm/unistd_64.h)
NR = {
    "open": 2, "shmget": 29, "shmat": 30, "shmctl": 31, "socket": 41, "socketpair": 53, "fork": 57, "kill": 62,
    "msgget": 68, "msgsnd": 69, "msgctl": 71, "ptrace": 101, "setsid": 112, "mq_open": 240, "mq_unlink": 241,
    "add_key": 248, "request_key": 249, "keyctl": 250, "openat": 257, "pipe2": 293, "perf_event_open": 298,
    "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
}

# The probe's head: raw syscalls through libc, results as values or minus the errno.
PRELUDE = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, S = ctypes.c_long, ctypes.c_char_p


def call(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(L(NR[name]), *args)
    return result if result >= 0 else -ctypes.get_errno()


def report(out):
    sys.stderr.write("PROBE" + repr(out) + "ENDPROBE")
    sys.stderr.flush()
'''


def script(body: str, **values: object) -> str:
    """A probe: its values as Python assignments, the prelude, then the body."""
    values = {"NR": NR, **values}
    return "".join(f"{name} = {value!r}\n" for name, value in values.items()) + PRELUDE + body


def hostile_set(baseline_set: ComponentSet, body: str) -> ComponentSet:
    """The baseline with an `architecture` whose build_network runs `body` (indented four spaces) first."""
    source = baseline_set.sources["architecture"] + SHELL_HELPER + (
        "\n\n_build_network = build_network\n\n\ndef build_network(hp, device):\n" + body
        + "    return _build_network(hp, device)\n"
    )
    return baseline_set.with_component("architecture", source)


def native(probe: str, shell_prefix: str = "") -> str:
    """The body that runs the probe in a fresh interpreter, in the worker's jail."""
    command = f"{shell_prefix}{sys.executable} probe.py; exit 1"  # exit 1: the helper raises what it wrote
    return f"    with open('probe.py', 'w') as f:\n        f.write({probe!r})\n    shell({command!r})\n"


@contextmanager
def jailed(component_set: ComponentSet):
    """A real sandboxed worker set up with the set and warmed up, which fails with the probe's
    report; yields the report and the worker, still alive (killed on leaving)."""
    with SandboxedWorker(LIMITS, "cpu") as worker:
        setup = {
            "type": "setup", "sources": component_set.sources, "device": "cpu", "compile": False, "hyperparams": {},
            "threads": 1, "gpu_memory_fraction": LIMITS.gpu_memory_fraction,
            "writable_dirs": [str(worker.workdir), worker.env_cache_dir],
        }
        worker.request(setup, "ready", LIMITS.setup_seconds)
        with pytest.raises(WorkerFailure) as failure:
            worker.request({"type": "warmup", "seed": 0, "num_train": 16, "num_test": 16}, "warm", LIMITS.warmup_seconds)
        found = re.search(r"PROBE(.*?)ENDPROBE", str(failure.value), re.DOTALL)
        assert found, f"the probe did not report (it did not reach its syscalls): {failure.value}"
        yield ast.literal_eval(found.group(1)), worker


def unjailed(probe: str) -> dict:
    """The same probe here, outside any jail: what the host kernel answers without the jail."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"PROBE(.*?)ENDPROBE", done.stderr, re.DOTALL)
    assert found, done.stderr
    return ast.literal_eval(found.group(1))


def host_call(name: str, *args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(NR[name]), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    return result if result >= 0 else -ctypes.get_errno()




# --- SysV IPC and POSIX message queues: a private IPC namespace per worker ----------------------------

MAKE_IPC = r'''
out = {"shmget": call("shmget", L(KEY), L(4096), L(0o1000 | 0o2000 | 0o600))}
if out["shmget"] >= 0:
    address = call("shmat", L(out["shmget"]), L(0), L(0))
    ctypes.memmove(address, b"from worker A", 13)
    out["shm_text"] = ctypes.string_at(address, 13).decode()
out["msgget"] = call("msgget", L(KEY), L(0o1000 | 0o2000 | 0o600))
if out["msgget"] >= 0:
    message = ctypes.create_string_buffer((1).to_bytes(8, "little") + b"from worker A")
    out["msgsnd"] = call("msgsnd", L(out["msgget"]), message, L(13), L(0))
out["mq_open"] = call("mq_open", S(QUEUE), L(0o100 | 0o200 | 2), L(0o600), None)
# A process that keeps the segment attached while the worker lives (so that not even
# kernel.shm_rmid_forced=1 could remove it early); exec would detach it, so it sleeps here.
if call("fork") == 0:
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    import time
    time.sleep(600)
    os._exit(0)
report(out)
'''

FIND_IPC = r'''
report({"shmget": call("shmget", L(KEY), L(0), L(0)), "msgget": call("msgget", L(KEY), L(0)),
        "mq_open": call("mq_open", S(QUEUE), L(2), L(0), None)})
'''


def host_ipc(key: int, queue: bytes) -> dict[str, int]:
    """What this process's IPC namespace holds under the key and the queue's name."""
    return {"shmget": host_call("shmget", key, 0, 0), "msgget": host_call("msgget", key, 0),
            "mq_open": host_call("mq_open", ctypes.c_char_p(queue), O_RDWR, 0, None)}


def remove_host_ipc(found: dict[str, int], queue: bytes) -> None:
    if found["shmget"] >= 0:
        host_call("shmctl", found["shmget"], IPC_RMID, 0)
    if found["msgget"] >= 0:
        host_call("msgctl", found["msgget"], IPC_RMID, 0)
    if found["mq_open"] >= 0:
        os.close(found["mq_open"])
        host_call("mq_unlink", ctypes.c_char_p(queue))


def test_sysv_ipc_and_message_queues_stay_in_the_worker_that_made_them(baseline_set):
    key = 0x5EED0000 + os.getpid() % 0xFFFF
    queue = f"evolve-jail-{os.getpid()}".encode()  # the kernel's name (libc strips the leading slash)
    gone = {"shmget": -errno.ENOENT, "msgget": -errno.ENOENT, "mq_open": -errno.ENOENT}
    before = host_ipc(key, queue)
    remove_host_ipc(before, queue)  # a leftover of an earlier, failed run
    during = after = None
    try:
        with jailed(hostile_set(baseline_set, native(script(MAKE_IPC, KEY=key, QUEUE=queue)))) as (made, _):
            assert made["shmget"] >= 0 and made["shm_text"] == "from worker A", made  # worker A made all three
            assert made["msgget"] >= 0 and made["msgsnd"] == 0, made
            # POSIX queues: Landlock already refuses to open one (the mqueue file system is beneath no rule)
            assert made["mq_open"] >= 0 or made["mq_open"] == -errno.EACCES, made
            during = host_ipc(key, queue)  # while A lives, with its segment attached
            with jailed(hostile_set(baseline_set, native(script(FIND_IPC, KEY=key, QUEUE=queue)))) as (seen, _):
                pass
        after = host_ipc(key, queue)
    finally:
        for found in (during, after):
            if found:
                remove_host_ipc(found, queue)  # a leak: clean up before failing
    assert seen["mq_open"] in (-errno.ENOENT, -errno.EACCES), seen
    seen["mq_open"] = -errno.ENOENT
    assert seen == gone, seen  # worker B, started after A and while it lived, finds none of them
    assert during == gone, during  # nor does the host, while A lives
    assert after == gone, after  # nor once both have exited


# --- seccomp: keyrings, sockets, io_uring, tracing; Landlock: files ---------------------------------

REFUSED = r'''
buffer = ctypes.create_string_buffer(256)
fds = (ctypes.c_int * 2)()
out = {
    "add_key": call("add_key", S(b"user"), S(b"evolve-jail"), S(b"v"), L(1), L(-2)),  # the process keyring
    "request_key": call("request_key", S(b"user"), S(b"evolve-jail-none"), None, L(-2)),
    "keyctl": call("keyctl", L(0), L(-2), L(1)),  # KEYCTL_GET_KEYRING_ID, created
    "socket_unix": call("socket", L(1), L(1), L(0)),
    "socket_unix_datagram": call("socket", L(1), L(2 | 0o2000000), L(0)),  # SOCK_DGRAM | SOCK_CLOEXEC
    "socket_netlink": call("socket", L(16), L(3), L(0)),
    "socket_packet": call("socket", L(17), L(3), L(0)),
    "socket_vsock": call("socket", L(40), L(1), L(0)),
    "io_uring_setup": call("io_uring_setup", L(8), buffer),
    "bpf": call("bpf", L(0), buffer, L(72)),  # BPF_MAP_CREATE with a zeroed attribute
    "perf_event_open": call("perf_event_open", None, L(0), L(-1), L(-1), L(0)),
    "userfaultfd": call("userfaultfd", L(1)),  # UFFD_USER_MODE_ONLY
    "ptrace": call("ptrace", L(2), L(0x3FFFFFF0), L(0), L(0)),  # PTRACE_PEEKDATA of no process
    "process_vm_readv": call("process_vm_readv", L(os.getpid()), None, L(0), None, L(0), L(0)),
    "process_vm_writev": call("process_vm_writev", L(os.getpid()), None, L(0), None, L(0), L(0)),
    "socket_inet": call("socket", L(2), L(1), L(0)),
    "socket_inet6": call("socket", L(10), L(2), L(0)),
    "socketpair_unix": call("socketpair", L(1), L(1), L(0), fds),
    "pipe2": call("pipe2", fds, L(0)),
    "open_outside": call("open", S(OUTSIDE + b"/open.txt"), L(0o1 | 0o100), L(0o600)),
    "openat_outside": call("openat", L(-100), S(OUTSIDE + b"/openat.txt"), L(0o1 | 0o100), L(0o600)),
}
report(out)
'''


@pytest.fixture(scope="module")
def refused(baseline_set, tmp_path_factory):
    """One worker runs every probe of REFUSED; the control runs it here. (jailed, unjailed, outside folder)"""
    outside = tmp_path_factory.mktemp("outside")
    control = tmp_path_factory.mktemp("control")
    with jailed(hostile_set(baseline_set, native(script(REFUSED, OUTSIDE=str(outside).encode())))) as (found, _):
        pass
    return found, unjailed(script(REFUSED, OUTSIDE=str(control).encode())), outside


def refused_by_the_jail(refused, names: list[str], code: int) -> None:
    jailed_answer, control, _ = refused
    assert {n: jailed_answer[n] for n in names} == {n: -code for n in names}, jailed_answer
    own = [n for n in names if control[n] in (-errno.EPERM, -errno.EACCES)]
    if own:
        pytest.skip(f"this host refuses {own} by itself ({control}); the jail's part cannot be told apart")


def test_keyrings_are_refused(refused):
    refused_by_the_jail(refused, ["add_key", "request_key", "keyctl"], errno.EPERM)


def test_unix_netlink_packet_and_vsock_sockets_are_refused(refused):
    names = ["socket_unix", "socket_unix_datagram", "socket_netlink", "socket_packet", "socket_vsock"]
    refused_by_the_jail(refused, names, errno.EACCES)


def test_io_uring_is_refused(refused):
    refused_by_the_jail(refused, ["io_uring_setup"], errno.EPERM)


def test_bpf_perf_events_userfaultfd_ptrace_and_process_vm_are_refused(refused):
    names = ["bpf", "perf_event_open", "userfaultfd", "ptrace", "process_vm_readv", "process_vm_writev"]
    refused_by_the_jail(refused, names, errno.EPERM)


def test_what_workers_need_stays_allowed(refused):
    """socketpair and pipes (multiprocessing, compile workers); IPv4/IPv6 sockets (TCP then meets
    Landlock and an empty network namespace)."""
    found, _, _ = refused
    assert found["socketpair_unix"] == 0 and found["pipe2"] == 0 and found["socket_inet"] >= 0, found
    assert found["socket_inet6"] >= 0 or found["socket_inet6"] == -errno.EAFNOSUPPORT, found


def test_writing_a_file_outside_the_worker_folder_is_refused(refused):
    found, control, outside = refused
    assert found["open_outside"] == -errno.EACCES and found["openat_outside"] == -errno.EACCES, found
    assert not list(outside.iterdir())
    assert control["open_outside"] >= 0 and control["openat_outside"] >= 0, control  # the probe can write


# --- processes and signals: a PID namespace per worker ------------------------------------------------

DAEMON = r'''
child = call("fork")
if child == 0:  # the child leaves the session, and its child is a daemon: reparented, in no group of ours
    call("setsid")
    if call("fork") == 0:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execvp("sleep", ["sleep", MARKER])
    os._exit(0)
os.waitpid(child, 0)
import time


def running():
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and MARKER.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append(int(entry))
        except OSError:
            pass
    return found


for _ in range(100):
    daemons = running()
    if daemons:
        break
    time.sleep(0.05)
report({"fork": child, "daemons": daemons})
'''


def test_a_setsid_double_forked_process_does_not_outlive_its_worker(baseline_set):
    marker = f"{5000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    with jailed(hostile_set(baseline_set, native(script(DAEMON, MARKER=marker)))) as (found, worker):
        assert found["fork"] > 0 and found["daemons"], found
        daemons = processes_with(marker)
        assert daemons, "the daemon is not running while its worker lives"
        assert all(os.getsid(p) != os.getsid(worker.process.pid) for p in daemons)  # it left the worker's session
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_with(marker), "a process the candidate started outlived its worker"


SIGNALS = r'''
out = {"own_pid_namespace": os.readlink("/proc/self/ns/pid") != HOST_PID_NAMESPACE}
out["kill_parent"] = call("kill", L(PARENT), L(15))
if out["own_pid_namespace"]:  # never kill(-1) where it would reach the host's processes
    out["kill_all"] = call("kill", L(-1), L(15))
report(out)
'''


def test_signals_from_the_worker_do_not_reach_the_parent(baseline_set):
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    probe = script(SIGNALS, PARENT=os.getpid(), HOST_PID_NAMESPACE=os.readlink("/proc/self/ns/pid"))
    try:  # the shell ignores SIGTERM, so that kill(-1) leaves the probe's shell (in its namespace) alive
        with jailed(hostile_set(baseline_set, native(probe, shell_prefix="trap '' TERM; "))) as (found, _):
            time.sleep(0.2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert found["own_pid_namespace"], found  # else kill(-1) would have reached every process of this user
    assert found["kill_parent"] in (-errno.ESRCH, -errno.EPERM), found  # the parent is not even visible
    assert found["kill_all"] == 0, found  # kill(-1) reached the processes of its own namespace
    assert not received, "a signal from the worker reached the parent"


# --- no resolved libc handle in the worker's reach ---------------------------------------------------

# In the worker itself (under the audit hook): the jail module's globals, found through the frames.
LIBC_HANDLE = """
    import sys
    frame, names = sys._getframe(), None
    while frame is not None:
        if 'forget_libc' in frame.f_globals:
            names = sorted(frame.f_globals)
        frame = frame.f_back
    imported = sys.modules.get('evaluator.sandbox.jail')
    cached = imported._libc.cache_info().currsize if imported is not None and hasattr(imported, '_libc') else 0
    raise RuntimeError('PROBE' + repr({'jail_globals': names, 'imported_cache': cached}) + 'ENDPROBE')
"""


def test_the_worker_holds_no_resolved_libc_of_the_jail(baseline_set):
    with jailed(hostile_set(baseline_set, LIBC_HANDLE)) as (found, _):
        pass
    assert found["jail_globals"] and "restrict_self" in found["jail_globals"], found  # the probe found the module
    assert "_libc" not in found["jail_globals"] and "_syscall" not in found["jail_globals"], found
    assert found["imported_cache"] == 0, found


# --- the filter and the namespaces, read back ------------------------------------------------------------

def test_the_filter_refuses_each_listed_syscall_and_socket_family():
    """The BPF program, read back: every refused syscall has its return, the socket rule its families."""
    for machine in ("x86_64", "aarch64"):
        program = jail.seccomp_program(machine)
        column = 0 if machine == "x86_64" else 1
        refused_numbers = {k for code, _, _, k in program if code == 0x15}
        assert {numbers[column] for numbers in jail.REFUSED_SYSCALLS.values()} <= refused_numbers
        assert jail.SOCKET_SYSCALL[machine] in refused_numbers and set(jail.SOCKET_FAMILIES_ALLOWED) <= refused_numbers
        assert program[-1] == (0x06, 0, 0, jail.SECCOMP_RET_ALLOW) and len(program) < 256
    assert jail.REFUSED_SYSCALLS["add_key"][0] == NR["add_key"] and jail.REFUSED_SYSCALLS["io_uring_setup"][0] == NR["io_uring_setup"]


def test_every_worker_prefix_has_an_ipc_namespace():
    found = jail.namespaces()
    assert found.ipc and found.pid and "--ipc" in found.prefix
