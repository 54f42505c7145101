"""Evaluations on a Ray cluster: each job is one Ray task that calls the same `run_job` as the local pool.

How the pieces are split, and why:
- The loop, the database and the LLM calls stay on the driver (the machine that runs `evolve start`).
  A task gets a self-contained job (component sets as text, every setting) and returns its result;
  only the driver writes the database. A task has no side effect, so running one twice is harmless.
- The dataset is put into the object store once (`ray.put`) and every task gets that one reference:
  Ray copies it to a node the first time a task there needs it and serves it from that node's
  shared memory afterwards, never once per task.
- A job asks for one GPU and `cpus_per_task` CPUs (only the CPUs when harness.device is cpu). Ray
  sets CUDA_VISIBLE_DEVICES in the task and the sandbox passes it on to its worker, so the worker
  sees that one GPU. A paired promotion is one job: both of its workers share its GPU, as locally.
  The task runs the evaluator as it runs locally: the sandboxed worker, its jail and its limits
  apply on every node unchanged.
- Faults: when a task's Ray worker process or its node dies (or Ray kills it for memory), the job
  is submitted again, at most `max_retries` times, and Ray places it on a node that is alive; after
  that its result is a failure that names every attempt's reason. An exception raised inside
  `run_job` is a bug, not a fault: it reaches the loop as it would from the local pool.
- Each job's future is resolved once; a result for a job already resolved is dropped and counted
  (`duplicates`), and the store refuses a second evaluation of a candidate besides.
- `abandon()` (the second Ctrl-C, a seed that fails) and `shutdown(wait=False)` cancel the tasks in
  flight: first with a KeyboardInterrupt in the task, so that the evaluator's `with SandboxedWorker`
  kills its worker's process group, then, after `cancel_grace_seconds`, by killing the Ray worker.
- `job_progress()` lists the jobs in flight from the driver's tickets: a task does not report its
  cascade stages back to the driver, so each shows as on the cluster (with its attempt when retried).
- A driver that dies (SIGKILL) takes its tasks with it: Ray ends the tasks of a job whose owner is
  gone. The store still holds those candidates as `running`; `--resume` re-queues and re-submits them.

`import ray` happens here only: the rest of the project runs without Ray installed.
"""

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from evaluator.cascade import no_report
from evaluator.data import Dataset
from evaluator.results import Evaluation, PairedMeasurement, StageVerdict
from evolve.config import RaySettings
from evolve.search.executor import EvaluationJob, Executor, Job, JobProgress, JobRunner, Result, job_kind, run_job

try:
    import ray
    import ray.exceptions as ray_errors
except ImportError as e:  # the extra is not installed
    raise ImportError("the Ray executor needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]')") from e

# The task's process or machine went away: worth another attempt elsewhere.
RETRIABLE = (
    ray_errors.WorkerCrashedError,
    ray_errors.NodeDiedError,
    ray_errors.LocalRayletDiedError,
    ray_errors.OutOfMemoryError,
    ray_errors.ObjectLostError,
)
POLL_SECONDS = 0.05


class RayClusterError(RuntimeError):
    """The cluster cannot be used (unreachable address, refused connection); the message names the address."""


class TaskOutcome(BaseModel):
    """What a task sends back: the evaluator's result and where it ran."""

    result: Evaluation | PairedMeasurement
    node_id: str
    host: str


class TaskRecord(BaseModel):
    """One attempt of one job, for tests, benchmarks and the final report."""

    candidate_id: int
    kind: str  # evaluation or promotion
    attempt: int
    outcome: str  # done, retried, failed, cancelled, error
    node_id: str | None = None
    host: str | None = None
    reason: str = ""
    seconds: float = 0.0  # from submission to the result, on the driver's clock


@dataclass
class Ticket:
    job: Job
    future: Future
    attempt: int = 0
    reasons: list[str] = field(default_factory=list)
    submitted_at: float = 0.0


def _run_task(job: Job, dataset: Dataset, runner: JobRunner) -> TaskOutcome:
    """The body of every task. The job runs in a thread so that a cancellation reaches this one at once:
    Ray's polite cancel raises KeyboardInterrupt only between bytecodes, never inside a blocking wait."""
    box: dict[str, object] = {}
    accept_polite_cancel()

    def work() -> None:
        try:
            # gpu=None: the sandbox passes on the CUDA_VISIBLE_DEVICES that Ray set for this task's GPU.
            box["result"] = runner(job, dataset, None, no_report)
        except BaseException as e:  # noqa: BLE001  whatever the job raised is raised again in the task's thread
            box["error"] = e

    thread = threading.Thread(target=work, name="job", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:  # ray.cancel: end the job's sandboxed workers now (each leads its own process group)
        kill_child_process_groups()
        thread.join(1.0)
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return TaskOutcome(result=box["result"], node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname())


def accept_polite_cancel() -> None:
    """Give SIGINT Python's handler in a Ray worker that inherited it ignored (or at the default).

    Ray's polite cancel is `_thread.interrupt_main()`, which does nothing where SIGINT is ignored or
    at SIG_DFL; a worker started from a background job of a shell without job control (`ray start
    ... &` in a script, a CI runner) inherits it ignored, and every Ctrl-C then waited out
    `cancel_grace_seconds` and killed the Ray worker instead (tests/test_ray_executor.py reproduces it).
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def kill_child_process_groups() -> None:
    """SIGKILL the process group of every child of this process (the sandboxed workers it started)."""
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # gone already, or not a group leader of ours


_remote_task = ray.remote(_run_task)


def connect(settings: RaySettings) -> bool:
    """Join the cluster at settings.address (or start a one-machine Ray); True when this call connected."""
    if ray.is_initialized():
        return False
    address = settings.address
    if address not in (None, "auto", "local"):
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=settings.connect_timeout_seconds).close()
        except OSError as e:
            raise RayClusterError(
                f"cannot reach the Ray cluster at {address} ({e.strerror or e}): start its head on that machine with "
                f"`ray start --head --port={port}`, or pass the address it prints with --ray-address HOST:PORT"
            ) from None
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = "on this machine (address auto)" if address == "auto" else f"at {address}"
        raise RayClusterError(f"cannot connect to the Ray cluster {where}: {str(e).splitlines()[0][:300]}") from None
    return True


def _host_port(address: str) -> tuple[str, int]:
    plain = address.removeprefix("ray://")
    host, sep, port = plain.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayClusterError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379, or 'auto')")
    return host, int(port)


def failed_result(job: Job, reasons: list[str]) -> Result:
    """The failure that replaces a result no attempt could produce."""
    text = f"the Ray task failed {len(reasons)} time(s), not retried further: " + "; ".join(reasons)
    if isinstance(job, EvaluationJob):
        return Evaluation(changed=job.changed, status="failed", stages=[StageVerdict(stage="cluster", status="failed", message=text)])
    return PairedMeasurement(attempt=job.context.attempt if job.context else 1, first_pair=job.first_pair,
                             error=f"the paired re-measurement did not run: {text}")


def _describe(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' '.join(lines[:3])[:400]}"


class RayExecutor(Executor):
    """The executor protocol on a Ray cluster (see the module docstring)."""

    def __init__(self, settings: RaySettings, device: str, dataset: Dataset, runner: JobRunner = run_job):
        self.settings, self.device, self._runner = settings, device, runner
        self._owns_connection = connect(settings)
        self._dataset_ref = ray.put(dataset)  # once: every task gets this reference
        self._lock = threading.Lock()
        self._in_flight: dict[ray.ObjectRef, Ticket] = {}
        self._closing = threading.Event()
        self._slots: tuple[float, int] | None = None
        self.history: list[TaskRecord] = []
        self.duplicates = 0
        self._collector = threading.Thread(target=self._collect, name="ray-results", daemon=True)
        self._collector.start()

    # the protocol

    @property
    def slots(self) -> int:
        """Configured, or one per GPU (per cpus_per_task CPUs on the CPU) of the cluster now, re-read every 5 s."""
        if self.settings.slots:
            return self.settings.slots
        now = time.monotonic()
        if self._slots is None or now - self._slots[0] > 5:
            resources = ray.cluster_resources()
            count = resources.get("GPU", 0) if self.device == "cuda" else resources.get("CPU", 0) / self.settings.cpus_per_task
            self._slots = (now, max(1, int(count)))  # at least one: a job waits in Ray until a node can take it
        return self._slots[1]

    def submit(self, job: Job) -> "Future[Result]":
        if self._closing.is_set():
            raise RuntimeError("the Ray executor is shut down")
        ticket = Ticket(job=job, future=Future())
        self._launch(ticket)
        return ticket.future

    def job_progress(self) -> list[JobProgress]:
        """The jobs in flight, oldest first, since their latest submission (see the module docstring)."""
        return sorted((JobProgress(candidate_id=t.job.candidate_id, kind=job_kind(t.job), started=t.submitted_at,
                                   stage="on the cluster" if t.attempt == 0 else f"on the cluster, attempt {t.attempt + 1}")
                       for t in self._tickets()), key=lambda p: p.started)

    def abandon(self) -> None:
        """Cancel every task in flight now (politely, then by force after cancel_grace_seconds); their futures end cancelled."""
        self._cancel_all()

    def shutdown(self, wait: bool = True) -> None:
        """wait: let the jobs in flight finish; else cancel them (politely, then by force) and drop their futures."""
        if wait:
            wait_futures([t.future for t in self._tickets()])
        else:
            self._cancel_all()
        self._closing.set()
        self._collector.join(timeout=10)
        if self._owns_connection:
            ray.shutdown()

    def describe(self) -> str:
        """The cluster in one line, for the start of a search."""
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        text = f"Ray cluster of {len(nodes)} node(s), {gpus} GPU(s), {cpus} CPU(s): {self.slots} evaluation(s) at once"
        if self.device == "cuda" and gpus == 0:
            text += "; no GPU yet: evaluations wait until a GPU worker joins (`ray start --address=HEAD:PORT`)"
        return text

    # submitting and collecting

    def _launch(self, ticket: Ticket) -> None:
        job = ticket.job
        kind = job_kind(job)
        options = {
            "num_cpus": self.settings.cpus_per_task,
            "num_gpus": 1 if self.device == "cuda" else 0,
            "max_retries": 0,  # retries are ours: each attempt's reason is kept
            "retry_exceptions": False,
            "name": f"evolve-{kind}-{job.candidate_id}",
        }
        ticket.submitted_at = time.monotonic()
        with self._lock:
            ref = _remote_task.options(**options).remote(job, self._dataset_ref, self._runner)
            self._in_flight[ref] = ticket

    def _tickets(self) -> list[Ticket]:
        with self._lock:
            return list(self._in_flight.values())

    def _collect(self) -> None:
        while not (self._closing.is_set() and not self._in_flight):
            with self._lock:
                refs = list(self._in_flight)
            if not refs:
                time.sleep(POLL_SECONDS)
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                self._settle(ref)

    def _settle(self, ref: "ray.ObjectRef") -> None:
        with self._lock:
            ticket = self._in_flight.pop(ref, None)
        if ticket is None:
            return
        job, seconds = ticket.job, time.monotonic() - ticket.submitted_at
        record = TaskRecord(candidate_id=job.candidate_id, kind=job_kind(job),
                            attempt=ticket.attempt, outcome="done", seconds=seconds)
        try:
            outcome: TaskOutcome = ray.get(ref)
        except ray_errors.TaskCancelledError:
            self._record(record.model_copy(update={"outcome": "cancelled"}))
            ticket.future.cancel()
        except RETRIABLE as e:
            reason = f"attempt {ticket.attempt + 1}: {_describe(e)}"
            ticket.reasons.append(reason)
            if ticket.attempt < self.settings.max_retries and not self._closing.is_set():
                self._record(record.model_copy(update={"outcome": "retried", "reason": reason}))
                ticket.attempt += 1
                self._launch(ticket)
            else:
                self._record(record.model_copy(update={"outcome": "failed", "reason": reason}))
                self.deliver(ticket, failed_result(job, ticket.reasons))
        except ray_errors.RayTaskError as e:  # raised by run_job itself: a bug, as from the local pool
            self._record(record.model_copy(update={"outcome": "error", "reason": _describe(e)}))
            if not ticket.future.done():
                ticket.future.set_exception(e)
        except ray_errors.RayError as e:  # Ray could not run it at all (unschedulable, runtime environment)
            ticket.reasons.append(f"attempt {ticket.attempt + 1}: {_describe(e)}")
            self._record(record.model_copy(update={"outcome": "failed", "reason": ticket.reasons[-1]}))
            self.deliver(ticket, failed_result(job, ticket.reasons))
        else:
            self._record(record.model_copy(update={"node_id": outcome.node_id, "host": outcome.host}))
            self.deliver(ticket, outcome.result)

    def deliver(self, ticket: Ticket, result: Result) -> bool:
        """Resolve the job's future once; a second result for it is dropped (and counted)."""
        with self._lock:
            if ticket.future.done():
                self.duplicates += 1
                return False
            ticket.future.set_result(result)
            return True

    def _record(self, record: TaskRecord) -> None:
        with self._lock:
            self.history.append(record)

    def _cancel_all(self) -> None:
        self._closing.set()  # no retries from here on
        with self._lock:
            refs = list(self._in_flight)
        for ref in refs:
            ray.cancel(ref, force=False)  # KeyboardInterrupt in the task: the sandbox's cleanup runs
        deadline = time.monotonic() + self.settings.cancel_grace_seconds
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        with self._lock:
            stubborn = list(self._in_flight.items())
        for ref, ticket in stubborn:
            ray.cancel(ref, force=True)
            ticket.future.cancel()
