"""Turning images into network inputs, and the training batch stream.

preprocess(images) converts uint8 (N, 32, 32, 3) images into the network's input format; the
harness applies it to the training images and to the test images, inside the timed region.
BatchStream yields the training batches of one epoch per iteration: a fresh random order each
epoch, random reflect-padded translation, and alternating flip (a random half of the images is
flipped once, then every image is flipped on odd epochs, so each sees both orientations).
"""

import torch
import torch.nn.functional as F

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def preprocess(images: torch.Tensor, hp: dict) -> torch.Tensor:
    """uint8 NHWC -> normalized NCHW; half and channels_last on CUDA, float32 on the CPU."""
    dtype = torch.half if images.is_cuda else torch.float32
    x = (images.to(dtype) / 255).permute(0, 3, 1, 2)
    if images.is_cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    mean = torch.tensor(CIFAR_MEAN, dtype=dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, dtype=dtype, device=images.device).view(1, 3, 1, 1)
    return (x - mean) / std


def random_flip(inputs: torch.Tensor) -> torch.Tensor:
    """Flip each image left-right with probability one half."""
    flip_mask = (torch.rand(len(inputs), device=inputs.device) < 0.5).view(-1, 1, 1, 1)
    return torch.where(flip_mask, inputs.flip(-1), inputs)


def random_crop(padded: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Crop each padded image at a random offset in [-r, r] along each axis.

    For small r, one masked copy per (dy, dx) pair; for larger r, two passes (rows, then
    columns) need 2(2r+1) masked copies instead of (2r+1)^2.
    """
    r = (padded.size(-1) - crop_size) // 2
    shifts = torch.randint(-r, r + 1, size=(len(padded), 2), device=padded.device)
    out = torch.empty((len(padded), padded.size(1), crop_size, crop_size), device=padded.device, dtype=padded.dtype)
    if r <= 2:
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                mask = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[mask] = padded[mask, :, r + dy : r + dy + crop_size, r + dx : r + dx + crop_size]
        return out
    rows = torch.empty((len(padded), padded.size(1), crop_size, padded.size(-1)), device=padded.device, dtype=padded.dtype)
    for dy in range(-r, r + 1):
        mask = shifts[:, 0] == dy
        rows[mask] = padded[mask, :, r + dy : r + dy + crop_size, :]
    for dx in range(-r, r + 1):
        mask = shifts[:, 1] == dx
        out[mask] = rows[mask, :, :, r + dx : r + dx + crop_size]
    return out


class BatchStream:
    """Training batches: iterate once per epoch; the last incomplete batch is dropped."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, hp: dict):
        self.labels = labels
        self.batch_size = hp["batch_size"]
        self.flip = hp["flip"]
        self.pad = hp["translate"]
        self.crop_size = inputs.size(-1)
        self.epoch = 0
        # Pre-flip once so that flipping everything on odd epochs alternates each image.
        self.images = random_flip(inputs) if self.flip else inputs
        if self.pad > 0:  # pad once; each epoch only crops
            self.images = F.pad(self.images, (self.pad,) * 4, "reflect")

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def __iter__(self):
        images = random_crop(self.images, self.crop_size) if self.pad > 0 else self.images
        if self.flip and self.epoch % 2 == 1:
            images = images.flip(-1)
        self.epoch += 1
        order = torch.randperm(len(images), device=images.device)
        for i in range(len(self)):
            idxs = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield images[idxs], self.labels[idxs]
