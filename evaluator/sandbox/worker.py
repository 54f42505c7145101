"""The worker process: runs one candidate component set, sandboxed, for the parent.

Started by evaluator.sandbox.sandboxed_worker as `python -m evaluator.sandbox.jail POLICY IN_FD OUT_FD`, which
enters the kernel jail (evaluator/sandbox/jail.py) before this module, and so torch, is even
imported; in its own PID namespace and process group, with a scrubbed environment, a private
folder and resource limits. Harness code (timing, protocol, guard) is imported before any
candidate text is loaded.

The conversation, in order (the worker refuses a message out of turn):
  setup {sources, ...}          -> ready       components loaded; no data exists in this process
  contracts {components}        -> contracts   (contract workers only)
  behaviour {hyperparams}       -> behaviour   the components' outputs on fixed probes (contract workers)
  warmup {seed, num_train, num_test, seeds} -> warm
                                   one run on random data, then what reset() gives under each
                                   run seed (the reference the runs are checked against)
  load {data_path}              -> loaded      training images and labels, read by harness code
                                               alone; the file is removed. From here on, candidate
                                               code runs only inside a timed run.
  prepare {seed, shape} + test images (permuted by the parent) -> prepared
  go {nonce}                    -> logits {nonce} + float32 payload, sent as soon as the clock
                                   stops; then the run's checks, off the clock -> checked {nonce}
  finish                        -> finished    no timed run follows (an extra reply forged earlier
                                               shows up before this one)
  profile {seed}                -> profile     an untimed profiled run, after finish
  exit
Any failure is answered with error {message}. The test labels never enter this process.
"""

import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from evaluator.sandbox import protocol
from evaluator.harness import checked_logits
from evaluator.sandbox.guard import Guard
from evaluator.timing import Stopwatch  # noqa: F401  bound before candidates load (see timing.py)
from evaluator.training import reordered, training_order


def describe_error(e: BaseException) -> str:
    """The exception and the last frames of candidate code, for the verdict."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<component")]
    where = f" (in {frames[-1].filename[1:-1]}, line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


class WorkerSession:
    # stage -> the messages allowed in it
    ALLOWED = {
        "new": ("setup",),
        "ready": ("contracts", "behaviour", "warmup"),
        "warm": ("load",),
        "loaded": ("prepare", "finish"),
        "prepared": ("go",),
        "done": ("profile",),
        "profiled": (),
    }

    def __init__(self, in_fd: int, out_fd: int):
        self.in_fd, self.out_fd = in_fd, out_fd
        self.stage = "new"
        self.speedrun = None
        self.train_images = self.train_labels = self.test_images = None
        self.run_seed: int | None = None

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
                    raise RuntimeError(f"{kind!r} is out of turn after {self.stage!r} (the parent sends one run at a time)")
                getattr(self, f"on_{kind}")(message, payload)
            except BaseException as e:  # every failure becomes a message; the parent decides
                self.reply({"type": "error", "message": describe_error(e)})
                if not isinstance(e, Exception):
                    raise

    def on_setup(self, message: dict, payload: bytes) -> None:
        Guard(writable_dirs=message["writable_dirs"]).install()
        torch.set_num_threads(message.get("threads", torch.get_num_threads()))
        if message["device"].startswith("cuda"):  # the GPU's share of a memory limit; RLIMIT_AS covers CPU workers
            torch.cuda.set_per_process_memory_fraction(message["gpu_memory_fraction"], torch.device(message["device"]))
        from evaluator.component_set import ComponentSet

        self.component_set = ComponentSet(sources=message["sources"])
        self.settings = message
        self.device = torch.device(message["device"])
        self.stage = "ready"
        self.reply({"type": "ready"})

    def on_contracts(self, message: dict, payload: bytes) -> None:
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

    def on_behaviour(self, message: dict, payload: bytes) -> None:
        from evaluator.behaviour import fingerprints

        self.reply({"type": "behaviour", "fingerprints": fingerprints(self.component_set, message["hyperparams"])})

    def on_warmup(self, message: dict, payload: bytes) -> None:
        from evaluator.harness import Speedrun

        start = time.perf_counter()
        self.speedrun = Speedrun(self.component_set, self.settings["device"], self.settings["compile"], self.settings["hyperparams"])
        self.speedrun.warm_up(int(message["num_train"]), int(message["num_test"]), seed=int(message["seed"]),
                              seeds=[int(s) for s in message["seeds"]])
        self.stage = "warm"
        self.reply({"type": "warm", "seconds": time.perf_counter() - start})

    def on_load(self, message: dict, payload: bytes) -> None:
        """Harness code only: the real training data enters the process after the last untimed candidate call."""
        path = Path(message["data_path"])
        with np.load(path, allow_pickle=False) as npz:
            self.train_images = torch.from_numpy(npz["train_images"]).to(self.device)
            self.train_labels = torch.from_numpy(npz["train_labels"]).to(self.device)
        path.unlink()
        self.speedrun.watch((self.train_images, self.train_labels))
        self.stage = "loaded"
        self.reply({"type": "loaded"})

    def on_prepare(self, message: dict, payload: bytes) -> None:
        shape = tuple(int(n) for n in message["shape"])
        test_images = np.frombuffer(payload, dtype=np.uint8).reshape(shape)
        self.test_images = torch.from_numpy(test_images.copy()).to(self.device)
        self.run_seed = int(message["seed"])
        order = training_order(self.run_seed, len(self.train_labels))
        self.run_train_images, self.run_train_labels = reordered(self.train_images, self.train_labels, order)
        self.input_versions = [t._version for t in (self.run_train_images, self.run_train_labels, self.test_images)]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.stage = "prepared"
        self.reply({"type": "prepared"})

    def on_go(self, message: dict, payload: bytes) -> None:
        self.stage = "loaded"  # whatever happens, this run is over
        nonce = str(message["nonce"])
        out = self.speedrun.timed_run(self.run_train_images, self.run_train_labels, self.test_images, self.run_seed)
        logits = checked_logits(out.logits, len(self.test_images)).numpy().astype(np.float32, copy=False)
        header = {
            "type": "logits",
            "nonce": nonce,
            "shape": list(logits.shape),
            "device_seconds": out.timing.device_seconds,
            "worker_seconds": out.timing.host_seconds,
        }
        self.reply(header, logits.tobytes())
        inputs = tuple((t, v) for t, v in zip((self.run_train_images, self.run_train_labels, self.test_images), self.input_versions))
        self.run_train_images = self.run_train_labels = None
        self.speedrun.check_state(self.run_seed, inputs)  # off the clock: the parent has its logits
        self.reply({"type": "checked", "nonce": nonce})

    def on_finish(self, message: dict, payload: bytes) -> None:
        self.stage = "done"
        self.reply({"type": "finished"})

    def on_profile(self, message: dict, payload: bytes) -> None:
        from evaluator.profiling import profile_run

        self.stage = "profiled"
        if self.test_images is None:
            raise RuntimeError("a profiled run comes after a timed run (it reuses that run's test images)")
        images, labels = reordered(self.train_images, self.train_labels, training_order(int(message["seed"]), len(self.train_labels)))
        summary = profile_run(self.speedrun, images, labels, self.test_images, int(message["seed"]))
        self.reply({"type": "profile", "summary": summary.model_dump()})


def main() -> None:
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    WorkerSession(in_fd, out_fd).serve()


if __name__ == "__main__":
    main()
