"""The parent's side of a sandboxed worker: start it, talk to it, time it, kill it.

The worker is a fresh `python -m evaluator.sandbox.jail POLICY IN OUT DATA`, which enters the
kernel jail (evaluator/sandbox/jail.py: Landlock and seccomp, before any candidate text exists)
and then runs evaluator.sandbox.worker. It starts as PID 1 of its own PID namespace (so a kill
reaches every process it started, `setsid` or not), in its own IPC namespace and in an empty
network namespace, in its own process group,
with a scrubbed environment (no API keys or credentials), a private folder that is its HOME,
TMPDIR and compile cache, limits on address space (CPU only: CUDA reserves more than any sane
limit), on the size of one file and of the whole folder (so flooding a file or the disk ends it),
on process count, and a wall-clock limit per message. The parent alone holds the test labels and
the authoritative clock, and treats the worker as compromised: everything it promises holds
from here and from the kernel (README, "Threat model"). `kill` returns only once every process
of the worker's namespace is gone, so no process of one run is alive during the next.
"""

import ctypes
import functools
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from evaluator.data import cache_dir
from evaluator.sandbox import jail, protocol
from evaluator.sandbox.limits import WorkerLimits

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1  # linux/prctl.h

ENVIRONMENT_PASSED = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME")


class WorkerFailure(RuntimeError):
    """The worker crashed, hung, exited, broke the protocol or reported an error."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind  # crash, timeout, error, protocol (a forged, early or unbound reply)


@functools.cache
def network_namespace_prefix() -> tuple[str, ...]:
    """`unshare` arguments that start a command without network, or () where the OS refuses.

    As root a new network namespace is enough; otherwise a user namespace makes it possible.
    Where neither works (containers without the capability), the audit hook's socket ban remains.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for prefix in ((unshare, "--net"), (unshare, "--map-root-user", "--net")):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return ()


def scrubbed_environment(workdir: Path, gpu: int | None = None, packages: Path | None = None, threads: int = 1) -> dict[str, str]:
    """No credentials; HOME, TMPDIR and every compile cache inside the worker's own folder."""
    env = {k: os.environ[k] for k in ENVIRONMENT_PASSED if k in os.environ}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    path = ([str(packages)] if packages else []) + jail.library_paths()
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / "tmp"),  # inductor's precompiled headers go to $TMPDIR/torchinductor_*
        PYTHONPATH=os.pathsep.join(dict.fromkeys(path)),
        PYTHONDONTWRITEBYTECODE="1",
        TORCHINDUCTOR_CACHE_DIR=str(workdir / "cache" / "inductor"),
        TRITON_CACHE_DIR=str(workdir / "cache" / "triton"),
        TRITON_HOME=str(workdir),
        OMP_NUM_THREADS=str(threads),  # the worker sets torch's count too; this covers pools made at import
    )
    return env


def jail_refusal(limits: WorkerLimits) -> str | None:
    """Why this system cannot jail a worker, or None when it can (or the user opted out)."""
    if limits.unjailed_trusted_code:
        return None
    if jail.landlock_abi() < 1:
        return jail.unavailable_message()
    if jail.namespaces(limits.isolate_network) is None:
        return jail.no_pid_namespace_message()
    return None


def check_jail(limits: WorkerLimits, data: str | None = None) -> None:
    """Raise JailUnavailable with the reason and the opt-out, before any work is done.

    `data` is the --data setting: a file of test labels that the worker must not be able to read.
    """
    reason = jail_refusal(limits)
    if reason:
        raise jail.JailUnavailable(reason)
    if jail.landlock_abi() >= 1:  # the folders are the worker's own; what else it may read is fixed
        unused = Path(tempfile.gettempdir()) / "evolve-worker-check"
        jail.ensure_unreadable(jail.worker_policy(unused / "work", unused / "packages", cuda=True), [cache_dir()] + labelled_files(data))


def labelled_files(data: str | None) -> list[Path]:
    return [Path(data)] if data and data not in ("cifar10", "synthetic") else []


def child_pids(parent: int) -> list[int]:
    """The children of a process, from the parent field of /proc/PID/stat."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()  # after "(comm)", which may hold spaces
        except OSError:
            continue  # exited meanwhile
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry))
    return found


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Until each process (a PID namespace's init) has exited: its exit completes only once every
    other process of its namespace is gone. A zombie counts as gone (it holds no resources)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                break  # gone (and reaped)
            if state in ("Z", "X"):
                break
            time.sleep(0.005)


def folder_usage(folder: Path, most_entries: int) -> tuple[int, int]:
    """Bytes allocated and entries beneath folder; stops counting past most_entries."""
    size = count = 0
    stack = [str(folder)]
    while stack and count <= most_entries:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    count += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            size += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue  # removed while we looked
        except OSError:
            continue
    return size, count


class SandboxedWorker:
    """One worker process for one candidate; use as a context manager."""

    def __init__(self, limits: WorkerLimits, device: str, gpu: int | None = None):
        self.limits = limits
        self.warmup_seconds: float | None = None  # measured by the cascade's warm-up; the run limit follows it
        self.device = device
        self.gpu = gpu  # the one GPU the worker sees (CUDA_VISIBLE_DEVICES), None: what the parent sees
        self._tmp = tempfile.TemporaryDirectory(prefix="evolve-worker-")
        self.workdir = Path(self._tmp.name) / "work"  # the worker's only writable folder
        self.packages = Path(self._tmp.name) / "packages"  # links to the project's packages, read-only
        self.env_cache_dir = str(self.workdir / "cache")  # private: no compile cache is shared between workers
        self.process: subprocess.Popen | None = None
        self.network_isolated = False
        self.pid_namespace = False
        self.landlock_abi = 0  # 0: not jailed (only with unjailed_trusted_code)
        self.folder_problem = ""  # set by the folder watch when it killed the worker
        self._watch_stop = threading.Event()

    def __enter__(self) -> "SandboxedWorker":
        limits, cpu_only = self.limits, self.device == "cpu"
        check_jail(limits)
        for folder in (self.workdir / "tmp", self.workdir / "cache"):
            folder.mkdir(parents=True)
        jail.link_packages(self.packages)
        namespaces = jail.namespaces(limits.isolate_network)
        if namespaces is not None:
            prefix, self.pid_namespace, self.network_isolated = namespaces.prefix, namespaces.pid, namespaces.network
        else:  # only reachable with unjailed_trusted_code
            prefix = list(network_namespace_prefix() if limits.isolate_network else ())
            self.network_isolated = bool(prefix)
        if jail.landlock_abi() >= 1:
            policy = jail.worker_policy(self.workdir, self.packages, cuda=not cpu_only)
            jail.ensure_unreadable(policy, [cache_dir()])
            policy = policy.model_dump_json()
            self.landlock_abi = jail.landlock_abi()
        else:
            policy = "unjailed"

        parent = os.getpid()

        def restrict() -> None:  # runs in the child before exec
            # Dies with the thread that started it: a killed search (SIGKILL, a crash) leaves no worker
            # training on; unshare's --kill-child then takes the whole namespace with it.
            if LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != parent:
                os._exit(1)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            if cpu_only:
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

        to_worker_r, self._to_worker = os.pipe()
        self._from_worker, from_worker_w = os.pipe()
        # The run's data descriptor travels on a socket (SCM_RIGHTS), once the clock runs (run_data.py).
        self._data, data_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._stdout = open(self.workdir / "output.log", "wb")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-P", "-m", "evaluator.sandbox.jail", policy, str(to_worker_r), str(from_worker_w),
             str(data_child.fileno())],
            pass_fds=(to_worker_r, from_worker_w, data_child.fileno()),
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=scrubbed_environment(self.workdir, self.gpu, self.packages, limits.threads),
            start_new_session=True,  # its own process group; the PID namespace reaches what leaves it
            preexec_fn=restrict,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        data_child.close()
        threading.Thread(target=self._watch_folder, name="worker-folder-watch", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._watch_stop.set()
        self.kill()
        for fd in (self._to_worker, self._from_worker):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed when the worker's pipe broke
        self._data.close()
        self._stdout.close()
        self._tmp.cleanup()

    def kill(self) -> None:
        """Kill the worker's process group; with a PID namespace that takes every process it started."""
        if self.process and self.process.poll() is None:
            # The namespace's PID 1 (unshare's child) first: it may have left the group (setsid) and
            # cleared its parent-death signal; killing it ends every process in its namespace.
            inits = child_pids(self.process.pid) if self.pid_namespace else []
            for pid in inits:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group exited between poll() and killpg()
            self.process.wait()
            wait_gone(inits)

    def _watch_folder(self, interval: float = 1.0) -> None:
        """Kill the worker when its folder grows past the limits (RLIMIT_FSIZE bounds one file only)."""
        while not self._watch_stop.wait(interval):
            size, count = folder_usage(self.workdir, self.limits.folder_files)
            if size > self.limits.folder_bytes or count > self.limits.folder_files:
                self.folder_problem = (
                    f"the worker's folder exceeded its limit ({size / 2**20:.0f} MiB in {count} entries; "
                    f"at most {self.limits.folder_bytes / 2**20:.0f} MiB in {self.limits.folder_files})"
                )
                self.kill()
                return
            if self.process is None or self.process.poll() is not None:
                return


    def send_descriptor(self, fd: int) -> None:
        """Hand the worker a descriptor (the run's sealed data, run_data.py)."""
        try:
            socket.send_fds(self._data, [b"d"], [fd])
        except OSError as e:
            raise self._failure(f"could not hand the run's data to the worker ({e})") from e

    def output_tail(self, limit: int = 2000) -> str:
        self._stdout.flush()
        with open(self.workdir / "output.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")

    def _check_quiet(self, header: dict) -> None:
        """Nothing may arrive before the parent asks: a reply written early is forged."""
        readable, _, _ = select.select([self._from_worker], [], [], 0)
        if readable:
            if self.process is not None and self.process.poll() is not None:
                raise self._failure("the worker exited")
            self.kill()
            raise WorkerFailure(
                f"the worker wrote on its pipe before the parent sent {header['type']!r}: a reply written early "
                "is forged (only the harness answers, and only when asked)", "protocol"
            )

    def send(self, header: dict, payload: bytes = b"") -> None:
        self._check_quiet(header)
        self._send(header, payload)

    def _send(self, header: dict, payload: bytes = b"") -> None:
        try:
            protocol.send(self._to_worker, header, payload)
        except OSError as e:
            raise self._failure(f"could not send to the worker ({e})") from e

    def receive(self, expected: str, timeout: float, nonce: str | None = None) -> tuple[dict, bytes]:
        """The next message, which must be `expected` (and carry `nonce` when given)."""
        try:
            header, payload = protocol.receive(self._from_worker, timeout)
        except protocol.WorkerTimeout:
            self.kill()
            raise WorkerFailure(f"the worker did not answer within {timeout:.0f} s (killed its process group)", "timeout")
        except protocol.ProtocolError as e:
            raise self._failure(str(e)) from e
        if header["type"] == "error":
            raise WorkerFailure(str(header.get("message", "unknown error"))[:2000], "error")
        if header["type"] != expected:
            raise self._failure(f"the worker sent {header['type']!r} where {expected!r} was due")
        if nonce is not None and header.get("nonce") != nonce:
            self.kill()
            raise WorkerFailure(
                f"the worker's {expected!r} does not carry this run's nonce: a reply not bound to its run is forged", "protocol"
            )
        return header, payload

    def request(self, header: dict, expected: str, timeout: float, payload: bytes = b"") -> tuple[dict, bytes]:
        self.send(header, payload)
        return self.receive(expected, timeout)

    def timed_request(self, header: dict, expected: str, timeout: float, nonce: str, descriptor: int | None = None,
                      ) -> tuple[dict, bytes, float]:
        """Send (and hand over `descriptor`, the run's data), and measure with the parent's clock
        until the complete answer has arrived; the answer must carry `nonce`, which the parent
        chose fresh for this message. The clock starts before the data leaves the parent."""
        self._check_quiet(header)
        start = time.perf_counter()
        self._send(header)
        if descriptor is not None:
            self.send_descriptor(descriptor)
        answer, payload = self.receive(expected, timeout, nonce)
        return answer, payload, time.perf_counter() - start

    def _failure(self, message: str) -> WorkerFailure:
        time.sleep(0.05)  # let a dying worker finish writing its last words
        code = self.process.poll() if self.process else None
        self.kill()
        if code is not None:
            reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            if code == -signal.SIGXFSZ:
                reason += " (output or file size limit exceeded)"
            if self.folder_problem:
                reason += f": {self.folder_problem}"
            message = f"the worker ended ({reason}): {message}"
        tail = self.output_tail()
        return WorkerFailure(message + (f"\n--- worker output (tail) ---\n{tail}" if tail.strip() else ""), "crash")
