"""The record network: airbench94's layout with SiLU, SVD whitening and half precision throughout.

build_network(hp, device) is what the harness calls, once per evaluation; the harness then calls
model.reset() before every run and model.init_whiten(train_inputs) inside the timed region.
The optimizer relies on two attributes: `whiten` (the first conv, whose bias trains) and `head`.

What changed against the baseline (the Hive's cifar10_speedrun.py):
- SiLU instead of GELU inside the conv groups (the activation right after whitening stays GELU);
- the whitening filters come from an SVD of the patch covariance instead of eigh (for a
  symmetric positive semi-definite matrix both give the same basis; the Hive found SVD the more
  stable and faster choice), computed from 960 images instead of 5,000;
- on CUDA every module, batch norm included, is half precision and channels_last (the baseline
  keeps batch norm in float32); on the CPU everything stays float32, where half convs are slow.
"""

import torch
from torch import nn


class BatchNorm(nn.BatchNorm2d):
    """Batch norm with a fixed scale of one and fast-moving running statistics."""

    def __init__(self, num_features: int, momentum: float, eps: float):
        super().__init__(num_features, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = False


class Conv(nn.Conv2d):
    """3x3 conv whose first in_channels filters start as the identity (dirac) kernel."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=3, padding="same", bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        w = self.weight.data
        torch.nn.init.dirac_(w[: w.size(1)])


class ConvGroup(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, hp: dict):
        super().__init__()
        bn = dict(momentum=hp["batchnorm_momentum"], eps=hp["batchnorm_eps"])
        self.conv1 = Conv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, **bn)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm2 = BatchNorm(channels_out, **bn)
        self.activ = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class CifarNet(nn.Module):
    def __init__(self, hp: dict, channels_last: bool):
        super().__init__()
        k = hp["whiten_kernel_size"]
        whiten_width = 2 * 3 * k**2
        self.channels_last = channels_last
        self.whiten_eps = hp["whiten_eps"]
        self.whiten_init_images = hp["whiten_init_images"]
        self.whiten = nn.Conv2d(3, whiten_width, k, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        self.layers = nn.Sequential(
            nn.GELU(),
            ConvGroup(whiten_width, hp["width1"], hp),
            ConvGroup(hp["width1"], hp["width2"], hp),
            ConvGroup(hp["width2"], hp["width3"], hp),
            nn.MaxPool2d(3),
        )
        self.head = nn.Linear(hp["width3"], 10, bias=False)
        # Which parameters train; reset() restores it after the optimizer froze the whitening bias.
        self.trainable = {name: p.requires_grad for name, p in self.named_parameters()}

    def reset(self) -> None:
        """A fresh initialization, as if just constructed (also unfreezes the whitening bias)."""
        for m in self.modules():
            if type(m) in (nn.Conv2d, Conv, BatchNorm, nn.Linear):
                m.reset_parameters()
        for name, p in self.named_parameters():
            p.requires_grad_(self.trainable[name])
        w = self.head.weight.data
        w *= 1 / w.std()

    @torch.no_grad()
    def init_whiten(self, train_inputs: torch.Tensor) -> None:
        """Set the first layer to whiten 2x2 image patches: W = S^(-1/2) U^T of their covariance.

        Each basis vector appears with both signs, so the following GELU keeps the information.
        """
        images = train_inputs[: self.whiten_init_images]
        c, (h, w) = images.shape[1], self.whiten.weight.shape[2:]
        patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w).float()
        covariance = (patches.T @ patches) / len(patches)
        U, S, _ = torch.linalg.svd(covariance)
        scaled = (U.T * torch.rsqrt(S + self.whiten_eps).unsqueeze(1)).reshape(-1, c, h, w)
        self.whiten.weight.data[:] = torch.cat((scaled, -scaled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:  # a no-op when the batch already is; crops come out contiguous
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.layers(self.whiten(x))
        x = x.view(len(x), -1)
        return self.head(x) / x.size(-1)


def build_network(hp: dict, device: torch.device) -> nn.Module:
    """Half precision and channels_last on CUDA; float32 on the CPU."""
    on_cuda = torch.device(device).type == "cuda"
    model = CifarNet(hp, channels_last=on_cuda).to(device)
    if on_cuda:
        model = model.half().to(memory_format=torch.channels_last)
    return model
