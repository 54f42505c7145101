"""The worker process: runs one candidate component set, sandboxed, for the parent.

Started by evaluator.sandbox.sandboxed_worker as `python -m evaluator.sandbox.worker IN_FD OUT_FD` in its own process
group, with a scrubbed environment, a temporary working directory and resource limits. It gets
the training images and labels and the test images (never the test labels) in a file the parent
wrote. Harness code (timing, protocol, guard) is imported before any candidate text is loaded.

Messages in (JSON): setup, contracts, behaviour {hyperparams}, warmup, prepare {seed}, go, profile {seed}, exit.
Messages out: ready / contracts / behaviour / warm / prepared / logits (+ float32 payload) / profile / error.
"""

import sys
import time
import traceback

import numpy as np
import torch

from evaluator.sandbox import protocol
from evaluator.sandbox.guard import Guard
from evaluator.timing import Stopwatch  # noqa: F401  bound before candidates load (see timing.py)
from evaluator.training import training_order


def describe_error(e: BaseException) -> str:
    """The exception and the last frames of candidate code, for the verdict."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<component")]
    where = f" (in {frames[-1].filename[1:-1]}, line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


class WorkerSession:
    def __init__(self, in_fd: int, out_fd: int):
        self.in_fd, self.out_fd = in_fd, out_fd
        self.speedrun = None
        self.data = None

    def reply(self, header: dict, payload: bytes = b"") -> None:
        protocol.send(self.out_fd, header, payload)

    def serve(self) -> None:
        while True:
            message, _ = protocol.receive(self.in_fd, timeout=24 * 3600)
            kind = message["type"]
            if kind == "exit":
                return
            try:
                getattr(self, f"on_{kind}")(message)
            except BaseException as e:  # every failure becomes a message; the parent decides
                self.reply({"type": "error", "message": describe_error(e)})
                if not isinstance(e, Exception):
                    raise

    def on_setup(self, message: dict) -> None:
        Guard(writable_dirs=message["writable_dirs"]).install()
        torch.set_num_threads(message.get("threads", torch.get_num_threads()))
        if message["device"].startswith("cuda"):  # the GPU's share of a memory limit; RLIMIT_AS covers CPU workers
            torch.cuda.set_per_process_memory_fraction(message["gpu_memory_fraction"], torch.device(message["device"]))
        from evaluator.component_set import ComponentSet

        self.component_set = ComponentSet(sources=message["sources"])
        self.settings = message
        self.reply({"type": "ready"})

    def on_contracts(self, message: dict) -> None:
        from evaluator.contracts import run_contract

        results = {}
        for name in message["components"]:
            start = time.perf_counter()
            try:
                run_contract(self.component_set, name)
                results[name] = {"passed": True, "message": "", "seconds": time.perf_counter() - start}
            except Exception as e:
                results[name] = {"passed": False, "message": describe_error(e), "seconds": time.perf_counter() - start}
        self.reply({"type": "contracts", "results": results})

    def on_behaviour(self, message: dict) -> None:
        from evaluator.behaviour import fingerprints

        self.reply({"type": "behaviour", "fingerprints": fingerprints(self.component_set, message["hyperparams"])})

    def on_warmup(self, message: dict) -> None:
        from evaluator.harness import DeviceData, Speedrun

        device = torch.device(self.settings["device"])
        with np.load(message["data_path"], allow_pickle=False) as npz:
            arrays = {k: torch.from_numpy(npz[k]) for k in ("train_images", "train_labels", "test_images")}
        self.data = DeviceData(**{k: v.to(device) for k, v in arrays.items()})
        start = time.perf_counter()
        self.speedrun = Speedrun(self.component_set, self.settings["device"], self.settings["compile"], self.settings["hyperparams"])
        self.speedrun.warm_up(len(self.data.train_labels), len(self.data.test_images), seed=message["seed"], data=tuple(vars(self.data).values()))
        self.reply({"type": "warm", "seconds": time.perf_counter() - start})

    def on_prepare(self, message: dict) -> None:
        self.run_data = self.data.reordered(training_order(message["seed"], len(self.data.train_labels)))
        self.speedrun.prepare(message["seed"])
        if self.speedrun.device.type == "cuda":
            torch.cuda.synchronize()
        self.reply({"type": "prepared"})

    def on_go(self, message: dict) -> None:
        d = self.run_data
        out = self.speedrun.timed_run(d.train_images, d.train_labels, d.test_images)
        logits = out.logits.numpy().astype(np.float32, copy=False)
        header = {
            "type": "logits",
            "shape": list(logits.shape),
            "device_seconds": out.timing.device_seconds,
            "worker_seconds": out.timing.host_seconds,
        }
        self.reply(header, logits.tobytes())

    def on_profile(self, message: dict) -> None:
        from evaluator.profiling import profile_run

        order = np.random.default_rng(message["seed"]).permutation(len(self.data.train_labels))
        d = self.data.reordered(order)
        summary = profile_run(self.speedrun, d.train_images, d.train_labels, d.test_images, message["seed"])
        self.reply({"type": "profile", "summary": summary.model_dump()})


def main() -> None:
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    WorkerSession(in_fd, out_fd).serve()


if __name__ == "__main__":
    main()
