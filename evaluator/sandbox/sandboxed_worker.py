"""The parent's side of a sandboxed worker: start it, talk to it, time it, kill it.

The worker is a fresh `python -m evaluator.sandbox.worker` in its own process group (so a kill reaches
every process it started), with a scrubbed environment (no API keys or credentials), a temporary
working directory, limits on address space (CPU only: CUDA reserves more than any sane limit),
file size (so flooding stdout ends it) and process count, and a wall-clock limit per message.
The parent alone holds the test labels and the authoritative clock.
"""

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from evaluator.data import Dataset, cache_dir
from evaluator.sandbox import protocol

ENVIRONMENT_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME")


class WorkerLimits(BaseModel):
    setup_seconds: float = Field(120, description="loading the set and the contract tests")
    warmup_seconds: float = Field(900, description="warm-up run including compilation")
    run_seconds: float = Field(120, description="one timed run")
    memory_bytes: int = Field(16 << 30, description="address-space limit of a CPU worker")
    output_bytes: int = Field(64 << 20, description="largest file (stdout, stderr included) a worker may write")
    threads: int = Field(
        1, ge=1, description="CPU threads of torch in the worker; one per worker avoids thrashing on shared cores"
    )
    gpu_memory_fraction: float = Field(
        0.45, gt=0, le=1, description="share of the GPU's memory a CUDA worker may allocate (two fit for paired runs)"
    )
    isolate_network: bool = Field(True, description="start the worker in an empty network namespace where the OS allows")


class WorkerFailure(RuntimeError):
    """The worker crashed, hung, exited, broke the protocol or reported an error."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind  # crash, timeout, error, protocol


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


def scrubbed_environment(workdir: Path, gpu: int | None = None, threads: int = 1) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENVIRONMENT_PASSED if k in os.environ}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    compile_cache = cache_dir() / "compile"
    env.update(
        TMPDIR=str(workdir),
        PYTHONPATH=os.pathsep.join(p or os.getcwd() for p in sys.path),
        PYTHONDONTWRITEBYTECODE="1",
        TORCHINDUCTOR_CACHE_DIR=str(compile_cache / "inductor"),
        TRITON_CACHE_DIR=str(compile_cache / "triton"),
        OMP_NUM_THREADS=str(threads),  # the worker sets torch's count too; this covers pools made at import
    )
    return env


class SandboxedWorker:
    """One worker process for one candidate; use as a context manager."""

    def __init__(self, limits: WorkerLimits, device: str, gpu: int | None = None):
        self.limits = limits
        self.device = device
        self.gpu = gpu  # the one GPU the worker sees (CUDA_VISIBLE_DEVICES), None: what the parent sees
        self._tmp = tempfile.TemporaryDirectory(prefix="evolve-worker-")
        self.workdir = Path(self._tmp.name)
        self.env_cache_dir = str(cache_dir() / "compile")
        self.process: subprocess.Popen | None = None
        self.network_isolated = False

    def __enter__(self) -> "SandboxedWorker":
        to_worker_r, self._to_worker = os.pipe()
        self._from_worker, from_worker_w = os.pipe()
        limits, cpu_only = self.limits, self.device == "cpu"

        def restrict() -> None:  # runs in the child before exec
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cpu_only:
                resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

        (cache_dir() / "compile").mkdir(parents=True, exist_ok=True)
        self._stdout = open(self.workdir / "output.log", "wb")
        prefix = network_namespace_prefix() if limits.isolate_network else ()
        self.network_isolated = bool(prefix)
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "evaluator.sandbox.worker", str(to_worker_r), str(from_worker_w)],
            pass_fds=(to_worker_r, from_worker_w),
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=scrubbed_environment(self.workdir, self.gpu, limits.threads),
            start_new_session=True,  # its own process group: killpg reaches everything it spawns
            preexec_fn=restrict,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        for fd in (self._to_worker, self._from_worker):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed when the worker's pipe broke
        self._stdout.close()
        self._tmp.cleanup()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group exited between poll() and killpg()
            self.process.wait()

    def write_data(self, dataset: Dataset) -> Path:
        """Training images and labels and test images for the worker; never the test labels."""
        path = self.workdir / "data.npz"
        np.savez(path, train_images=dataset.train_images, train_labels=dataset.train_labels, test_images=dataset.test_images)
        return path

    def output_tail(self, limit: int = 2000) -> str:
        self._stdout.flush()
        with open(self.workdir / "output.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")

    def send(self, header: dict) -> None:
        try:
            protocol.send(self._to_worker, header)
        except OSError as e:
            raise self._failure(f"could not send to the worker ({e})") from e

    def receive(self, expected: str, timeout: float) -> tuple[dict, bytes]:
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
        return header, payload

    def request(self, header: dict, expected: str, timeout: float) -> tuple[dict, bytes]:
        self.send(header)
        return self.receive(expected, timeout)

    def timed_request(self, header: dict, expected: str, timeout: float) -> tuple[dict, bytes, float]:
        """Send, and measure with the parent's clock until the complete answer has arrived."""
        start = time.perf_counter()
        self.send(header)
        answer, payload = self.receive(expected, timeout)
        return answer, payload, time.perf_counter() - start

    def _failure(self, message: str) -> WorkerFailure:
        time.sleep(0.05)  # let a dying worker finish writing its last words
        code = self.process.poll() if self.process else None
        self.kill()
        if code is not None:
            reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            if code == -signal.SIGXFSZ:
                reason += " (output or file size limit exceeded)"
            message = f"the worker ended ({reason}): {message}"
        tail = self.output_tail()
        return WorkerFailure(message + (f"\n--- worker output (tail) ---\n{tail}" if tail.strip() else ""), "crash")
