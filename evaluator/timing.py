"""The in-process clock of a timed region: host time with device synchronization at both ends.

It times the region inside one process: a worker's own part of its run (its `device_seconds`,
from the receipt of "go" to its logits; a check on the parent), an in-process `Speedrun.run`
(export verification, benchmarks) and the exported script's runs (data already on the device).
The scored time is not taken here but by the parent around a worker's whole run, from handing
over the data to the receipt of the logits (evaluator/runs.py `timed_sample`).

The host clock (perf_counter) is authoritative; CUDA events are recorded beside it so that the
two can be compared. Functions are bound here, at import, before any component is loaded, so a
component that patches torch.cuda.synchronize or time.perf_counter later cannot reach them.
"""

import time
from dataclasses import dataclass

import torch

_perf_counter = time.perf_counter
_cuda_synchronize = torch.cuda.synchronize
_cuda_event = torch.cuda.Event


@dataclass
class Timing:
    host_seconds: float
    device_seconds: float | None  # from CUDA events; None on the CPU


class Stopwatch:
    def __init__(self, device: torch.device):
        self.cuda = torch.device(device).type == "cuda"
        self._start = self._end = None
        self._t0 = 0.0

    def start(self) -> None:
        if self.cuda:
            _cuda_synchronize()
            self._start, self._end = _cuda_event(enable_timing=True), _cuda_event(enable_timing=True)
            self._start.record()
        self._t0 = _perf_counter()

    def stop(self) -> Timing:
        if self.cuda:
            self._end.record()
            _cuda_synchronize()
        host = _perf_counter() - self._t0
        device = 1e-3 * self._start.elapsed_time(self._end) if self.cuda else None
        return Timing(host_seconds=host, device_seconds=device)
