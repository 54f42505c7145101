"""The Muon optimizer and the optimizers, parameter groups and schedules of the network.

build_optimizer() is what the harness calls. It returns a TrainingOptimizer whose step(step)
applies the learning-rate schedule for that step and updates every trainable parameter. The
harness owns the loop: forward, loss, backward, optimizer.step(step), optimizer.zero_grad().
"""

import math
from typing import Callable

import torch
from torch import nn

Orthogonalize = Callable[..., torch.Tensor]


class Muon(torch.optim.Optimizer):
    """Momentum SGD whose update is orthogonalized by Newton-Schulz (for conv filters).

    Before each step every weight is renormalized to norm sqrt(out_channels); with batch norm
    after each conv, the scale of a filter does not change the function, so this only fixes the
    effective learning rate.
    """

    def __init__(
        self,
        params,
        orthogonalize: Orthogonalize,
        lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        newton_schulz_steps: int = 3,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a positive momentum")
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov)
        super().__init__(params, defaults)
        self.orthogonalize = orthogonalize
        self.newton_schulz_steps = newton_schulz_steps

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(g)
                g = g.add(buf, alpha=momentum) if group["nesterov"] else buf

                p.mul_(len(p) ** 0.5 / p.norm())
                update = self.orthogonalize(g.reshape(len(g), -1), self.newton_schulz_steps)
                p.add_(update.view(g.shape), alpha=-lr)


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
        self.muon = Muon(
            filters,
            orthogonalize,
            lr=hp["muon_lr"],
            momentum=hp["muon_momentum"],
            nesterov=True,
            newton_schulz_steps=hp["newton_schulz_steps"],
        )
        self.optimizers = [self.sgd, self.muon]
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["initial_lr"] = group["lr"]

    def step(self, step: int) -> None:
        """Update the parameters with the learning rates of training step `step` (from 0)."""
        whiten_group, *other_sgd_groups = self.sgd.param_groups
        whiten_group["lr"] = whiten_group["initial_lr"] * (1 - step / self.whiten_bias_steps)
        for group in other_sgd_groups + self.muon.param_groups:
            group["lr"] = group["initial_lr"] * (1 - step / self.total_steps)
        for opt in self.optimizers:
            opt.step()
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
