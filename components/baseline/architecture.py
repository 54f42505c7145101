"""The airbench94 network: a frozen patch-whitening conv, three conv groups, a linear head.

build_network(hp, device) is what the harness calls, once per evaluation; the harness then calls
model.reset() before every run and model.init_whiten(train_inputs) inside the timed region.
The optimizer relies on two attributes: `whiten` (the first conv, whose bias trains) and `head`.
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
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class CifarNet(nn.Module):
    def __init__(self, hp: dict, half: bool):
        super().__init__()
        k = hp["whiten_kernel_size"]
        whiten_width = 2 * 3 * k**2
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
        if half:  # batch norm stays in float32 for stable statistics
            for mod in self.modules():
                if not isinstance(mod, BatchNorm):
                    mod.half()
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
        """Set the first layer to whiten image patches (eigenvectors of their covariance).

        Each eigenvector appears with both signs, so the following GELU keeps the information.
        """
        images = train_inputs[: self.whiten_init_images]
        c, (h, w) = images.shape[1], self.whiten.weight.shape[2:]
        patches = images.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w)
        patches_flat = patches.float().reshape(len(patches), -1)
        covariance = (patches_flat.T @ patches_flat) / len(patches_flat)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance, UPLO="U")
        scaled = eigenvectors.T.reshape(-1, c, h, w) / torch.sqrt(eigenvalues.view(-1, 1, 1, 1) + self.whiten_eps)
        self.whiten.weight.data[:] = torch.cat((scaled, -scaled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.whiten(x))
        x = x.view(len(x), -1)
        return self.head(x) / x.size(-1)


def build_network(hp: dict, device: torch.device) -> nn.Module:
    """Half precision and channels_last on CUDA; float32 on the CPU, where half convs are slow."""
    on_cuda = torch.device(device).type == "cuda"
    model = CifarNet(hp, half=on_cuda).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    return model
