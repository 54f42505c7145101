"""Batched Muon with periodic renormalization, and the optimizers and schedules of the network.

build_optimizer() is what the harness calls. It returns a TrainingOptimizer whose step(step)
applies the learning-rate schedule for that step and updates every trainable parameter. The
harness owns the loop: forward, loss, backward, optimizer.step(step), optimizer.zero_grad().

What changed against the baseline (the Hive's cifar10_speedrun.py):
- One Newton-Schulz call per step for all conv filters: each filter's update matrix is
  zero-padded to a common (rows, cols) shape and the six are stacked (see newton_schulz.py for
  why padding does not change the result). Momentum, the update and the renormalization use
  torch._foreach_* kernels: one launch for all filters instead of one per filter.
- Filters are renormalized to norm sqrt(out_channels) only every k steps, k growing over
  training, instead of before every step. Batch norm follows every conv, so a filter's scale
  only sets its effective learning rate; letting it drift for a few steps costs nothing.
- Decoupled weight decay on the filters, and the Hive's retuned rates and momenta.
- Momentum buffers take the gradient's dtype: half on CUDA, float32 on the CPU.
"""

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Orthogonalize = Callable[..., torch.Tensor]

# The padded column count is rounded up to a multiple of this, which suits tensor cores.
PAD_MULTIPLE = 16


def renormalization_steps(total_steps: int, interval_start: int, interval_growth: float) -> frozenset[int]:
    """The steps (from 0) before whose update the filters are renormalized.

    The Hive's rule, counted in updates n = step + 1: renormalize when at least
    interval_start + int(interval_growth * n / total_steps) updates passed since the last one.
    Deriving the set from total_steps alone (not from a counter in the optimizer) makes the
    schedule a pure function of the step, so a state_dict round trip cannot shift it.
    """
    steps, last = set(), 0
    for n in range(1, total_steps + 1):
        if n - last >= interval_start + int(interval_growth * n / total_steps):
            steps.add(n - 1)
            last = n
    return frozenset(steps)


class BatchedMuon(torch.optim.Optimizer):
    """Momentum SGD on conv filters whose update is orthogonalized in one batched call."""

    def __init__(
        self,
        params,
        orthogonalize: Orthogonalize,
        lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        newton_schulz_steps: int = 3,
    ):
        if lr < 0.0 or momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a positive momentum")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))
        self.orthogonalize = orthogonalize
        self.newton_schulz_steps = newton_schulz_steps
        filters = [p for group in self.param_groups for p in group["params"]]
        # Every filter (out, in, kh, kw) is the matrix (out, in * kh * kw), padded to this shape.
        self.padded_rows = max([1] + [p.shape[0] for p in filters])
        cols = max([1] + [p[0].numel() for p in filters])
        self.padded_cols = math.ceil(cols / PAD_MULTIPLE) * PAD_MULTIPLE

    def _momentum_buffer(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad)
        return state["momentum_buffer"]

    def _orthogonalized(self, updates: list[torch.Tensor]) -> list[torch.Tensor]:
        """Pad, stack, orthogonalize once, and cut each filter's update back out."""
        padded = torch.stack([
            F.pad(u.reshape(len(u), -1), (0, self.padded_cols - u[0].numel(), 0, self.padded_rows - len(u)))
            for u in updates
        ])
        out = self.orthogonalize(padded, self.newton_schulz_steps)
        return [out[i, : len(u), : u[0].numel()].reshape(u.shape).to(u.dtype) for i, u in enumerate(updates)]

    @torch.no_grad()
    def step(self, closure=None, renormalize: bool = True):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, momentum = group["lr"], group["momentum"]
            grads = [p.grad for p in params]
            buffers = [self._momentum_buffer(p) for p in params]
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads)
            updates = torch._foreach_add(grads, buffers, alpha=momentum) if group["nesterov"] else buffers
            orthogonal = self._orthogonalized(updates)
            if renormalize:
                norms = torch._foreach_norm(params)
                torch._foreach_mul_(params, [len(p) ** 0.5 / (n + 1e-7) for p, n in zip(params, norms)])
            torch._foreach_add_(params, orthogonal, alpha=-lr)
            if group["weight_decay"] > 0:
                torch._foreach_mul_(params, 1 - lr * group["weight_decay"])


class TrainingOptimizer:
    """Every optimizer of the network with its linear-decay schedules.

    The whitening bias decays to zero over hp["whiten_bias_epochs"] and is then frozen
    (requires_grad off), which also spares the backward pass through the whitening layer.
    """

    def __init__(
        self,
        model: nn.Module,
        hp: dict,
        total_steps: int,
        steps_per_epoch: int,
        orthogonalize: Orthogonalize,
    ):
        self.model = model
        self.total_steps = total_steps
        self.whiten_bias_steps = max(1, math.ceil(hp["whiten_bias_epochs"] * steps_per_epoch))
        self.renormalize_at = renormalization_steps(total_steps, hp["renorm_interval_start"], hp["renorm_interval_growth"])
        bias_lr, head_lr = hp["bias_lr"], hp["head_lr"]
        wd = hp["weight_decay"] * hp["batch_size"]

        filters = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
        norm_biases = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
        param_groups = [
            dict(params=[model.whiten.bias], lr=bias_lr, weight_decay=wd / bias_lr),
            dict(params=norm_biases, lr=bias_lr, weight_decay=wd / bias_lr),
            dict(params=[model.head.weight], lr=head_lr, weight_decay=wd / head_lr),
        ]
        self.sgd = torch.optim.SGD(
            param_groups,
            momentum=hp["sgd_momentum"],
            nesterov=True,
            fused=filters[0].is_cuda,
        )
        self.muon = BatchedMuon(
            filters,
            orthogonalize,
            lr=hp["muon_lr"],
            momentum=hp["muon_momentum"],
            nesterov=True,
            weight_decay=hp["muon_weight_decay"] * hp["batch_size"],
            newton_schulz_steps=hp["newton_schulz_steps"],
        )
        for opt in (self.sgd, self.muon):
            for group in opt.param_groups:
                group["initial_lr"] = group["lr"]

    def step(self, step: int) -> None:
        """Update the parameters with the learning rates of training step `step` (from 0)."""
        whiten_group, *other_sgd_groups = self.sgd.param_groups
        whiten_group["lr"] = whiten_group["initial_lr"] * (1 - step / self.whiten_bias_steps)
        for group in other_sgd_groups + self.muon.param_groups:
            group["lr"] = group["initial_lr"] * (1 - step / self.total_steps)
        self.sgd.step()
        self.muon.step(renormalize=step in self.renormalize_at)
        if step + 1 >= self.whiten_bias_steps:
            self.model.whiten.bias.requires_grad_(False)

    def zero_grad(self) -> None:
        self.model.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"sgd": self.sgd.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sgd.load_state_dict(state["sgd"])
        self.muon.load_state_dict(state["muon"])


def build_optimizer(
    model: nn.Module,
    hp: dict,
    total_steps: int,
    steps_per_epoch: int,
    orthogonalize: Orthogonalize,
) -> TrainingOptimizer:
    """Called by the harness once per run, after model.reset() and before the clock starts."""
    return TrainingOptimizer(model, hp, total_steps, steps_per_epoch, orthogonalize)
