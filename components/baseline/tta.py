"""Prediction on the test images with multi-view test-time augmentation.

predict(model, inputs, hp) receives the preprocessed test images only (never labels) and
returns one row of logits per image. The harness has already put the model in eval mode and
disabled gradients. Level 2 averages six views: mirror x {no shift, one pixel up-left, one
pixel down-right}, the unshifted view weighted as much as the two shifted ones together.
"""

import torch
import torch.nn.functional as F
from torch import nn


def mirror_views(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * model(x) + 0.5 * model(x.flip(-1))


def mirror_and_translate_views(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    padded = F.pad(x, (1,) * 4, "reflect")
    h, w = x.shape[-2:]
    shifted = [padded[:, :, 0:h, 0:w], padded[:, :, 2 : h + 2, 2 : w + 2]]
    shifted_logits = torch.stack([mirror_views(model, s) for s in shifted]).mean(0)
    return 0.5 * mirror_views(model, x) + 0.5 * shifted_logits


def predict(model: nn.Module, inputs: torch.Tensor, hp: dict) -> torch.Tensor:
    views = [lambda m, x: m(x).clone(), mirror_views, mirror_and_translate_views][hp["tta_level"]]
    return torch.cat([views(model, chunk) for chunk in inputs.split(hp["tta_batch_size"])])
