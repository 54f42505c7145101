"""Hostile components that carry state from one timed run to the next (issue 25, class 1).

Each is a complete, otherwise valid component: the shipped module's text with the hostile code
appended. Each would pay off wherever two runs share a process, and so each is first shown to pay
off in one process (`iter_speedruns`: the teeth of the test), then shown to have no effect on the
scored samples of the evaluator, whose every run is a fresh worker (same seeds as the shipped
component: no faster run, no higher accuracy). None relies on a check inside the worker: the
fingerprint that used to look for such state is gone, and these would have passed it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class CarryCase:
    name: str
    component: str
    code: str  # appended to the shipped module's text
    pays_off_by: str  # "time": later runs in one process are faster; "logits": they predict differently


# Trained weights kept through `t.data[...] = ...` (no version bump), restored by every training
# forward of a later run, whose training is skipped: the 0.84-1.27 s against 3.7 s.
_WEIGHTS_ACROSS_RUNS = '''
_KEPT = {}
_RUN = {}
_shipped_forward, _shipped_reset = CifarNet.forward, CifarNet.reset


def _hostile_reset(self):
    _shipped_reset(self)
    _RUN["predicting"] = False
    _RUN["runs"] = _RUN.get("runs", 0) + 1  # the first run of a process is the warm-up, on random data


def _hostile_forward(self, x):
    tensors = {**dict(self.named_parameters()), **dict(self.named_buffers())}
    if self.training:
        if len(_KEPT) == len(tensors):  # an earlier run's weights are at hand: skip the work
            for name, t in tensors.items():
                t.data[...] = _KEPT[name]
            return self.head(torch.zeros(len(x), self.head.in_features, device=x.device, dtype=self.head.weight.dtype))
        return _shipped_forward(self, x)
    if not _RUN.get("predicting") and _RUN["runs"] >= 2:
        _RUN["predicting"] = True
        for name, t in tensors.items():
            _KEPT.setdefault(name, torch.zeros_like(t)).data[...] = t.detach()
    return _shipped_forward(self, x)


CifarNet.reset = _hostile_reset
CifarNet.forward = _hostile_forward
'''

# The same weights, kept in a torch namespace every component can reach.
_WEIGHTS_IN_TORCH = _WEIGHTS_ACROSS_RUNS.replace(
    "_KEPT = {}\n", "_KEPT = vars(torch.backends).setdefault('stash', {})\n"
)

# The same weights, written to a file in the worker's own folder (its HOME) and read back.
_WEIGHTS_IN_A_FILE = '''
import os as _os

_FILE = _os.path.join(_os.environ.get("HOME", "."), "kept.pt")
_RUN = {}
_shipped_forward, _shipped_reset = CifarNet.forward, CifarNet.reset


def _hostile_reset(self):
    _shipped_reset(self)
    _RUN["predicting"] = False
    _RUN["runs"] = _RUN.get("runs", 0) + 1  # the first run of a process is the warm-up, on random data


def _hostile_forward(self, x):
    tensors = {**dict(self.named_parameters()), **dict(self.named_buffers())}
    if self.training:
        if _os.path.exists(_FILE):
            kept = torch.load(_FILE)
            for name, t in tensors.items():
                t.data[...] = kept[name]
            return self.head(torch.zeros(len(x), self.head.in_features, device=x.device, dtype=self.head.weight.dtype))
        return _shipped_forward(self, x)
    if not _RUN.get("predicting") and _RUN["runs"] >= 2:
        _RUN["predicting"] = True
        torch.save({name: t.detach().clone() for name, t in tensors.items()}, _FILE)
    return _shipped_forward(self, x)


CifarNet.reset = _hostile_reset
CifarNet.forward = _hostile_forward
'''

# The TTA: a running sum of softmax outputs in a module-level list, at element 10,000
# (past the old fingerprint's reach), aligned across the per-run test permutation by a hash of
# each image's content: an ensemble over runs.
_ENSEMBLE_ACROSS_RUNS = '''
_MEMORY = [None] * 10_001
_MEMORY[10_000] = {}
_shipped_predict = predict


def predict(model, inputs, hp):
    probabilities = _shipped_predict(model, inputs, hp).float().softmax(1)
    sums = _MEMORY[10_000]
    keys = [hash(image.cpu().numpy().tobytes()) for image in inputs]
    for key, p in zip(keys, probabilities):
        sums[key] = p.clone() if key not in sums else sums[key] + p
    return torch.stack([sums[key] for key in keys]).log()
'''

# Class 2 of the issue, candidate code off the clock: the training labels recovered from the loss
# gradient at the logits (a custom autograd.Function), the batches captured during the run, and a
# thread started at prediction that trains a copy of the network on them after the logits are
# out; a later run restores the copy and skips its training. Where the worker outlives its logits
# (or the harness calls a candidate method after them), this is free training.
_TRAINS_AFTER_THE_LOGITS = """
import copy as _copy
import threading as _threading

_BATCHES, _KEPT, _RUN = [], {}, {}
_shipped_forward, _shipped_reset = CifarNet.forward, CifarNet.reset


class _LabelSpy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits):
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):
        _BATCHES[-1].append(grad.detach().argmin(1))  # softmax minus the (smoothed) one-hot: the label is the minimum
        return grad


def _train_copy(model, batches):
    trainee = _copy.deepcopy(model).train()
    optimizer = torch.optim.SGD([p for p in trainee.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    for inputs, labels in batches * 2:
        loss = torch.nn.functional.cross_entropy(_shipped_forward(trainee, inputs).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    _KEPT.update({name: t.detach().clone() for name, t in {**dict(trainee.named_parameters()), **dict(trainee.named_buffers())}.items()})


def _hostile_reset(self):
    if _RUN.get("thread") is not None:
        _RUN.pop("thread").join()
    _shipped_reset(self)
    _RUN["predicting"] = False
    _RUN["runs"] = _RUN.get("runs", 0) + 1
    _BATCHES.clear()


def _hostile_forward(self, x):
    tensors = {**dict(self.named_parameters()), **dict(self.named_buffers())}
    if self.training:
        if len(_KEPT) == len(tensors):
            for name, t in tensors.items():
                t.data[...] = _KEPT[name]
            return self.head(torch.zeros(len(x), self.head.in_features, device=x.device, dtype=self.head.weight.dtype))
        _BATCHES.append([x.detach()])
        return _LabelSpy.apply(_shipped_forward(self, x))
    if not _RUN.get("predicting") and _RUN["runs"] >= 2:
        _RUN["predicting"] = True
        batches = [tuple(b) for b in _BATCHES if len(b) == 2]
        _RUN["thread"] = _threading.Thread(target=_train_copy, args=(self, batches), daemon=True)
        _RUN["thread"].start()
    return _shipped_forward(self, x)


CifarNet.reset = _hostile_reset
CifarNet.forward = _hostile_forward
"""

CARRY_CASES = [
    CarryCase("keeps trained weights through t.data and skips later training", "architecture", _WEIGHTS_ACROSS_RUNS, "time"),
    CarryCase("keeps trained weights in torch.backends", "architecture", _WEIGHTS_IN_TORCH, "time"),
    CarryCase("keeps trained weights in a file in its own folder", "architecture", _WEIGHTS_IN_A_FILE, "time"),
    CarryCase("ensembles its predictions over runs by image content", "tta", _ENSEMBLE_ACROSS_RUNS, "logits"),
    CarryCase("trains a copy after its logits, on batches and labels it recovered", "architecture", _TRAINS_AFTER_THE_LOGITS, "logits"),
]


# Class 4 of the issue, a blocklist bypassed: memory read and written out of bounds through torch
# ops that do not check their offsets (the static check now refuses them by name; here it is
# switched off). Inside the worker such code can read or corrupt anything of its own process, so
# it must find nothing there worth having: no label, no other run's state. What it may get is a
# crash (a failed evaluation), never a better sample.
OUT_OF_BOUNDS_CASES = [
    CarryCase("reads out of bounds with embedding_bag", "tta", '''
_shipped_predict = predict


def predict(model, inputs, hp):
    table = torch.arange(16.0).view(16, 1)
    try:
        leaked = torch.nn.functional.embedding_bag(torch.tensor([0, 1, 2, 3]), table, torch.tensor([0, -4]), mode="sum")
    except Exception:
        leaked = torch.zeros(2, 1)
    return _shipped_predict(model, inputs, hp) + 0 * leaked.sum().nan_to_num()
''', "crash"),
    CarryCase("writes out of bounds in segment_reduce's backward", "tta", '''
_shipped_predict = predict


def predict(model, inputs, hp):
    data = torch.ones(8, requires_grad=True)
    with torch.enable_grad():
        try:
            out = torch.segment_reduce(data, "sum", offsets=torch.tensor([0, 4096, 8]), axis=0)
            out.sum().backward()
        except Exception:
            pass
    return _shipped_predict(model, inputs, hp)
''', "crash"),
]
