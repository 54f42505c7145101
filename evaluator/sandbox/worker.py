"""The worker process: one candidate component set, one timed run, for the parent.

Started by evaluator.sandbox.sandboxed_worker as `python -m evaluator.sandbox.jail POLICY IN OUT
DATA`, which enters the kernel jail (evaluator/sandbox/jail.py) before this module, and so torch,
is even imported; in its own PID, IPC and network namespaces, with a scrubbed environment, a
private folder and resource limits.

Nothing here is trusted by the parent. The threat model (README, "Threat model"): candidate code
may run arbitrary native code in this process from the moment its modules load, so this process
may lie, forge messages and keep threads running. What holds, holds from the parent and the
kernel: the test labels never enter this process; the real data enters it only once the parent's
clock runs (the "go" message's descriptor, evaluator/sandbox/run_data.py); the parent reads one
answer per run, bound to it by a fresh nonce, and kills the process as soon as it has the
logits, so no scored run shares a process with another, and nothing said after the logits is
heard. The stages below keep an honest worker in order and give good messages; they are no
guarantee.

The conversation, in order (the worker refuses a message out of turn):
  setup {sources, ...}          -> ready       components loaded; no data exists in this process
  contracts {components}        -> contracts   (contract workers only)
  behaviour {hyperparams}       -> behaviour   the components' outputs on fixed probes (contract workers)
  warmup {seed, num_train, num_test} -> warm   one run on random data (compiles; the smoke test)
  go {nonce, seed, layout} + the run's data descriptor on DATA
                                -> logits {nonce} + float32 payload: the one timed run. The
                                   parent's clock runs from before it hands over the descriptor
                                   until the logits have arrived; then it kills this process.
  profile {seed, layout} + data descriptor -> profile   an untimed profiled run (a profile worker)
  exit
Any failure is answered with error {message}.
"""

import os
import socket
import sys
import time
import traceback
from typing import ClassVar

import numpy as np
import torch

from evaluator.behaviour import fingerprints
from evaluator.component_set import ComponentSet
from evaluator.contracts import run_contract
from evaluator.harness import Speedrun, checked_logits
from evaluator.profiling import profile_run
from evaluator.sandbox import protocol
from evaluator.sandbox.guard import Guard
from evaluator.sandbox.run_data import ARRAYS, RunDataLayout, map_run_data
from evaluator.timing import Stopwatch  # bound before candidates load (see timing.py)


def describe_error(e: BaseException) -> str:
    """The exception and the last frames of candidate code, for the verdict."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<component")]
    where = f" (in {frames[-1].filename[1:-1]}, line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def setup_marks() -> dict[str, float]:
    """CLOCK_MONOTONIC seconds of this worker's start, which the parent's clock shares: when jailing
    began and ended (evaluator/sandbox/jail.py) and when the setup began. Read by bench/device_budget.py
    only, never trusted for a score."""
    jail_started, _, jailed = os.environ.get("EVOLVE_JAIL_MARKS", "").partition(",")
    marks = {"setup_started": time.monotonic()}
    if jailed:
        marks.update(jail_started=float(jail_started), jailed=float(jailed))
    return marks


class WorkerSession:
    # stage -> the messages allowed in it
    ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {
        "new": ("setup",),
        "ready": ("contracts", "behaviour", "warmup"),
        "warm": ("go", "profile"),
        "done": (),
    }

    def __init__(self, in_fd: int, out_fd: int, data_fd: int):
        self.in_fd, self.out_fd = in_fd, out_fd
        self.data = socket.socket(fileno=data_fd)
        self.stage = "new"
        self.speedrun = None

    def reply(self, header: dict, payload: bytes = b"") -> None:
        protocol.send(self.out_fd, header, payload)

    def serve(self) -> None:
        while True:
            message, payload = protocol.receive(self.in_fd, timeout=24 * 3600)
            kind = message["type"]
            if kind == "exit":
                return
            try:
                if kind not in self.ALLOWED[self.stage]:
                    raise RuntimeError(f"{kind!r} is out of turn after {self.stage!r} (a worker makes one run)")
                getattr(self, f"on_{kind}")(message, payload)
            except BaseException as e:  # every failure becomes a message; the parent decides
                self.reply({"type": "error", "message": describe_error(e)})
                if not isinstance(e, Exception):
                    raise

    def on_setup(self, message: dict, payload: bytes) -> None:
        marks = setup_marks()
        Guard(writable_dirs=message["writable_dirs"]).install()
        torch.set_num_threads(message.get("threads", torch.get_num_threads()))
        marks["device_started"] = time.monotonic()
        if message["device"].startswith("cuda"):  # the GPU's share of a memory limit; RLIMIT_AS covers CPU workers
            torch.cuda.set_per_process_memory_fraction(message["gpu_memory_fraction"], torch.device(message["device"]))
        marks["device_ready"] = time.monotonic()
        self.component_set = ComponentSet(sources=message["sources"])
        self.settings = message
        self.device = torch.device(message["device"])
        self.stage = "ready"
        self.reply({"type": "ready", "marks": marks})

    def on_contracts(self, message: dict, payload: bytes) -> None:
        results = {}
        for name in message["components"]:
            start = time.perf_counter()
            try:
                run_contract(self.component_set, name)
                results[name] = {"passed": True, "message": "", "seconds": time.perf_counter() - start}
            except Exception as e:  # noqa: BLE001  any failure of candidate code is the contract's verdict
                results[name] = {"passed": False, "message": describe_error(e), "seconds": time.perf_counter() - start}
        self.reply({"type": "contracts", "results": results})

    def on_behaviour(self, message: dict, payload: bytes) -> None:
        self.reply({"type": "behaviour", "fingerprints": fingerprints(self.component_set, message["hyperparams"])})

    def on_warmup(self, message: dict, payload: bytes) -> None:
        start = time.perf_counter()
        self.speedrun = Speedrun(self.component_set, self.settings["device"], self.settings["compile"], self.settings["hyperparams"])
        self.speedrun.warm_up(int(message["num_train"]), int(message["num_test"]), seed=int(message["seed"]))
        self.stage = "warm"
        # the worker's clock of its warm-up; the parent times the warm-up itself (runs.py warm_up_worker)
        self.reply({"type": "warm", "seconds": time.perf_counter() - start})

    def run_data(self, message: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The run's data, from the descriptor the parent passes once its clock runs; on the device."""
        _, fds, _, _ = socket.recv_fds(self.data, 1, 1)
        if len(fds) != 1:
            raise RuntimeError("the parent's data descriptor did not arrive")
        try:
            arrays = map_run_data(fds[0], RunDataLayout.model_validate(message["layout"]))
        finally:
            os.close(fds[0])
        return tuple(torch.from_numpy(arrays[name]).to(self.device) for name in ARRAYS)

    def on_go(self, message: dict, payload: bytes) -> None:
        self.stage = "done"  # one timed run per process
        nonce = str(message["nonce"])
        stopwatch = Stopwatch(self.device)
        stopwatch.start()
        train_images, train_labels, test_images = self.run_data(message)
        logits = self.speedrun.predictions(train_images, train_labels, test_images, int(message["seed"]))
        logits = checked_logits(logits, len(test_images)).numpy().astype(np.float32, copy=False)
        timing = stopwatch.stop()  # this worker's part of the run, a check on the parent's clock, which alone scores
        header = {
            "type": "logits",
            "nonce": nonce,
            "shape": list(logits.shape),
            "device_seconds": timing.device_seconds,
            "worker_seconds": timing.host_seconds,  # the same region on this worker's host clock; the parent does not read it
        }
        self.reply(header, logits.tobytes())

    def on_profile(self, message: dict, payload: bytes) -> None:
        self.stage = "done"
        train_images, train_labels, test_images = self.run_data(message)
        summary = profile_run(self.speedrun, train_images, train_labels, test_images, int(message["seed"]))
        self.reply({"type": "profile", "summary": summary.model_dump()})


def main() -> None:
    in_fd, out_fd, data_fd = (int(a) for a in sys.argv[1:4])
    WorkerSession(in_fd, out_fd, data_fd).serve()


if __name__ == "__main__":
    main()
