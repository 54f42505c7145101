"""Prediction on the test images, with test-time augmentation only where the network is unsure.

predict(model, inputs, hp) receives the preprocessed test images only (never labels) and
returns one row of logits per image. The harness has already put the model in eval mode and
disabled gradients.

The Hive's selective TTA: one plain pass over every image, then the extra views only for the
hp["tta_fraction"] of images with the lowest top-class probability. Confident predictions
rarely change under augmentation, so this keeps most of TTA's accuracy for about a quarter of
its cost. Level 2 averages six views with equal weight (mirror x {no shift, one pixel up-left,
one pixel down-right}); the baseline instead weights the unshifted pair as much as the four
shifted views together. All views of a chunk go through the network in one call.
"""

import torch
import torch.nn.functional as F
from torch import nn


def views(x: torch.Tensor, level: int) -> torch.Tensor:
    """The level's augmented copies of x, concatenated along the batch: (views * N, C, H, W)."""
    copies = [x]
    if level >= 2:
        h, w = x.shape[-2:]
        padded = F.pad(x, (1,) * 4, "reflect")
        copies += [padded[:, :, 0:h, 0:w], padded[:, :, 2 : h + 2, 2 : w + 2]]
    if level >= 1:
        copies += [c.flip(-1) for c in copies]
    return torch.cat(copies)


def augmented_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    logits = model(views(x, level))
    return logits.view(-1, len(x), logits.size(-1)).mean(0)


def predict(model: nn.Module, inputs: torch.Tensor, hp: dict) -> torch.Tensor:
    chunk = hp["tta_batch_size"]
    # torch.cat copies: a compiled model may reuse its output buffers on the next call.
    logits = torch.cat([model(part) for part in inputs.split(chunk)])
    level = hp["tta_level"]
    num_unsure = int(len(inputs) * hp["tta_fraction"])
    if level == 0 or num_unsure == 0:
        return logits
    confidence = logits.float().softmax(1).amax(1)
    unsure = confidence.topk(num_unsure, largest=False, sorted=False).indices
    for part in unsure.split(chunk):
        logits[part] = augmented_logits(model, inputs[part], level).to(logits.dtype)
    return logits
