"""Hostile native code in the real jail (issue 25): every kernel channel between workers, and out
of a worker, is shut by the kernel, not by the static check or the audit hook.

The candidate (a `tta` module, static check switched off) starts a fresh interpreter through a
torch helper (tests/redteam/jail_cases.py, SHELL_HELPER): no audit hook there, ctypes and raw
syscalls at hand, in the worker's jail (Landlock, seccomp, namespaces, all inherited). Its probe
reports each syscall's result (a negative errno) in the verdict's message. A first worker creates
a SysV shared-memory segment and a message queue under a fixed key; a second worker, started after
the first has exited, must not find them, nor must this process afterwards; the second also tries
the keyring, netlink and unix sockets, io_uring, ptrace, a file outside and a signal to the parent.
(That processes a worker starts, setsid or not, die with it: tests/test_redteam_jail.py.)
"""

import ctypes
import errno
import json
import os
import platform
import re
import sys

import pytest

import evaluator.cascade as cascade_module
from evaluator.cascade import CascadeSettings, evaluate_candidate
from evaluator.data import synthetic_dataset
from evaluator.sandbox import jail
from evaluator.sandbox.sandboxed_worker import WorkerLimits
from evaluator.settings import HarnessSettings, ScoreSettings
from tests.redteam.jail_cases import HEAD, SHELL_HELPER

pytestmark = pytest.mark.skipif(
    jail.landlock_abi() < 1 or jail.namespaces() is None or platform.machine() != "x86_64",
    reason="no kernel jail here (or not x86_64, whose syscall numbers the probe uses)",
)

LIMITS = WorkerLimits(setup_seconds=120, warmup_seconds=120, run_seconds=60, memory_bytes=6 << 30, output_bytes=8 << 20)
CASCADE = CascadeSettings(runs=2, min_runs=2, limits=LIMITS)
HARNESS = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})
SCORE = ScoreSettings(target=0.2)
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
SHMGET, SHMCTL, MSGGET, MSGCTL = 29, 31, 68, 71  # x86_64

PROBE = r'''
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long


def call(nr, *args):
    ctypes.set_errno(0)
    result = libc.syscall(L(nr), *args)
    return result if result >= 0 else -ctypes.get_errno()


out = {}
if MODE == "write":
    out["shmget"] = call(29, L(KEY), L(4096), L(0o1000 | 0o2000 | 0o600))
    out["msgget"] = call(68, L(KEY), L(0o1000 | 0o2000 | 0o600))
else:
    out["shmget"] = call(29, L(KEY), L(0), L(0))
    out["msgget"] = call(68, L(KEY), L(0))
    out["add_key"] = call(248, ctypes.c_char_p(b"user"), ctypes.c_char_p(b"k"), ctypes.c_char_p(b"v"), L(1), L(-2))
    out["keyctl"] = call(250, L(0), L(-2), L(1))
    out["netlink_socket"] = call(41, L(16), L(3), L(0))
    out["unix_socket"] = call(41, L(1), L(1), L(0))
    out["inet_socket"] = call(41, L(2), L(1), L(0))
    out["io_uring_setup"] = call(425, L(8), ctypes.create_string_buffer(120))
    out["ptrace"] = call(101, L(0), L(0), L(0), L(0))
    out["open_outside"] = call(2, ctypes.c_char_p(b"OUTSIDE/native.txt"), L(0o101), L(0o600))
    out["kill_parent"] = call(62, L(PARENT), L(0))
sys.stderr.write("PROBE" + json.dumps(out) + "END")
'''


def component(mode: str, key: int, outside: str) -> str:
    probe = PROBE.replace("MODE", repr(mode)).replace("KEY", str(key)).replace("OUTSIDE", outside).replace("PARENT", str(os.getpid()))
    body = (f"    with open('probe.py', 'w') as f:\n        f.write({probe!r})\n"
            f"    shell({sys.executable!r} + ' probe.py; exit 1')\n")
    return SHELL_HELPER + HEAD + body + "    return model(inputs)\n"


def probe(baseline_set, dataset, mode: str, key: int, outside: str) -> dict[str, int]:
    candidate = baseline_set.with_component("tta", baseline_set.sources["tta"] + component(mode, key, outside))
    evaluation = evaluate_candidate(candidate, ["tta"], dataset, HARNESS, SCORE, CASCADE)
    message = evaluation.stages[-1].message
    found = re.search(r"PROBE(\{.*?\})END", message)
    assert found, message  # the probe ran to its end in the jail
    return json.loads(found.group(1))


def host_call(nr: int, *args: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return result if result >= 0 else -ctypes.get_errno()


def test_no_kernel_channel_between_workers_or_out_of_them(baseline_set, monkeypatch, tmp_path):
    monkeypatch.setattr(cascade_module, "check_source", lambda name, source: [])
    dataset = synthetic_dataset(300, 100, seed=7)
    key = 0x5EED0000 + os.getpid() % 0xFFFF
    outside = tmp_path / "outside"
    outside.mkdir()
    try:
        written = probe(baseline_set, dataset, "write", key, str(outside))
        assert written["shmget"] >= 0 and written["msgget"] >= 0, written  # the first worker made both

        seen = probe(baseline_set, dataset, "read", key, str(outside))
        assert seen["shmget"] == -errno.ENOENT and seen["msgget"] == -errno.ENOENT, seen  # not in the next worker
        assert seen["add_key"] == -errno.EPERM and seen["keyctl"] == -errno.EPERM, seen
        assert seen["netlink_socket"] == -errno.EACCES and seen["unix_socket"] == -errno.EACCES, seen
        assert seen["inet_socket"] >= 0, seen  # the filter lets the rest through (TCP then goes nowhere)
        assert seen["io_uring_setup"] == -errno.EPERM and seen["ptrace"] == -errno.EPERM, seen
        assert seen["open_outside"] == -errno.EACCES and not (outside / "native.txt").exists(), seen
        assert seen["kill_parent"] == -errno.ESRCH, seen  # the parent is not even visible
    finally:
        host_shm, host_msg = host_call(SHMGET, key, 0, 0), host_call(MSGGET, key, 0)
        for nr, found in ((SHMCTL, host_shm), (MSGCTL, host_msg)):
            if found >= 0:  # a leak: clean up before failing
                host_call(nr, found, IPC_RMID, 0)
    assert host_shm == -errno.ENOENT and host_msg == -errno.ENOENT  # nor did they outlive the workers here


def test_the_filter_refuses_each_listed_syscall_and_socket_family():
    """The BPF program, read back: every refused syscall has its return, the socket rule its families."""
    program = jail.seccomp_program("x86_64")
    refused = {k for code, _, _, k in program if code == 0x15}
    assert {numbers[0] for numbers in jail.REFUSED_SYSCALLS.values()} <= refused
    assert jail.SOCKET_SYSCALL["x86_64"] in refused and set(jail.SOCKET_FAMILIES_ALLOWED) <= refused
    assert program[-1] == (0x06, 0, 0, jail.SECCOMP_RET_ALLOW) and len(program) < 256
