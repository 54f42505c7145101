"""Turning images into network inputs, and the training batch stream with its resolution curriculum.

preprocess(images) converts uint8 (N, 32, 32, 3) images into the network's input format; the
harness applies it to the training images and to the test images, inside the timed region.
BatchStream yields the training batches of one epoch per iteration: a fresh random order each
epoch, random reflect-padded translation, alternating flip, brightness and contrast jitter (all
as in the record set), and then the resolution curriculum.

The curriculum (Fulcrum Research's finding on top of the Hive's record): early training steps
see the 32 px crops bilinearly downsampled to hp["low_res_size"] (24 px), the next ones to
hp["mid_res_size"] (28 px), the rest at full size. A convolution's cost grows with the image's
area, so a 24 px step does about 0.56 of a 32 px step's work; the last steps at full size adapt
the network (and its batch-norm statistics) to the 32 px test images. Downsampling keeps the whole
scene at less detail, which costs less accuracy than cropping a smaller window would.

The stream chooses each batch's size from its step's place in training: step / total_steps, with
total_steps = ceil(epochs * batches per epoch) as the harness counts them. The stages are
fractions of training, not epoch counts, so a shorter or longer schedule (a mutated `epochs`, the
tests' two epochs) keeps the same shape and always ends at full size. The harness's warm-up is a
whole run with the same hyperparameters, so it meets every size before the clock runs.
"""

import math

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
    """Crop each padded image at its own random offset, in one indexing operation.

    Indexing with four tensors shaped (N,1,1,1), (1,C,1,1), (N,1,S,1) and (N,1,1,S) broadcasts
    them to (N, C, S, S): output pixel [n, c, i, j] reads padded[n, c, top[n] + i, left[n] + j].
    """
    n, c, size = len(padded), padded.size(1), padded.size(-1)
    device = padded.device
    span = torch.arange(crop_size, device=device)
    top = torch.randint(0, size - crop_size + 1, (n, 1), device=device)
    left = torch.randint(0, size - crop_size + 1, (n, 1), device=device)
    rows = (top + span).view(n, 1, crop_size, 1)
    cols = (left + span).view(n, 1, 1, crop_size)
    images = torch.arange(n, device=device).view(n, 1, 1, 1)
    channels = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[images, channels, rows, cols]


def color_jitter(inputs: torch.Tensor, brightness: float, contrast: float) -> torch.Tensor:
    """Per image: add a shift in [-brightness, brightness], then scale by 1 +- contrast.

    The inputs are already normalized, so the scale stretches each image about the data set's
    mean colour rather than about its own mean.
    """
    shape = (len(inputs), 1, 1, 1)
    shift = (2 * torch.rand(shape, device=inputs.device, dtype=inputs.dtype) - 1) * brightness
    scale = 1 + (2 * torch.rand(shape, device=inputs.device, dtype=inputs.dtype) - 1) * contrast
    return (inputs + shift) * scale


def downsample(batch: torch.Tensor, size: int) -> torch.Tensor:
    """The whole image at size x size pixels (bilinear, as F.interpolate computes it without antialiasing)."""
    return F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def curriculum_size(progress: float, stages: tuple[tuple[float, int], ...], full_size: int) -> int:
    """The image size at this fraction of training: each (fraction, size) stage in turn, then full size."""
    end = 0.0
    for fraction, size in stages:
        end += fraction
        if progress < end:
            return size
    return full_size


class BatchStream:
    """Training batches: iterate once per epoch; the last incomplete batch is dropped.

    Counts the batches it yields over all epochs, which is the harness's step count, so that
    each batch comes at the size of its step in the curriculum.
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, hp: dict):
        self.labels = labels
        self.batch_size = hp["batch_size"]
        self.flip = hp["flip"]
        self.pad = hp["translate"]
        self.brightness, self.contrast = hp["brightness"], hp["contrast"]
        self.crop_size = inputs.size(-1)
        self.epoch = 0
        self.step = 0
        self.total_steps = math.ceil(hp["epochs"] * len(self))
        self.stages = ((hp["low_res_fraction"], hp["low_res_size"]), (hp["mid_res_fraction"], hp["mid_res_size"]))
        compiled = inputs.is_cuda and hp["compile_augmentation"]
        # torch.compile caches the traced code on each function, so wrapping them again every
        # run costs nothing after the warm-up.
        self.crop = torch.compile(random_crop) if compiled else random_crop
        self.jitter = torch.compile(color_jitter) if compiled else color_jitter
        # Pre-flip once so that flipping everything on odd epochs alternates each image.
        self.images = random_flip(inputs) if self.flip else inputs
        if self.pad > 0:  # pad once; each epoch only crops
            self.images = F.pad(self.images, (self.pad,) * 4, "reflect")

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def __iter__(self):
        images = self.crop(self.images, self.crop_size) if self.pad > 0 else self.images
        if self.flip and self.epoch % 2 == 1:
            images = images.flip(-1)
        if self.brightness > 0 or self.contrast > 0:
            images = self.jitter(images, self.brightness, self.contrast)
        self.epoch += 1
        order = torch.randperm(len(images), device=images.device)
        for i in range(len(self)):
            idxs = order[i * self.batch_size : (i + 1) * self.batch_size]
            size = curriculum_size(self.step / self.total_steps, self.stages, self.crop_size)
            batch = images[idxs] if size == self.crop_size else downsample(images[idxs], size)
            self.step += 1
            yield batch, self.labels[idxs]
