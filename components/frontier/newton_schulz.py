"""Newton-Schulz orthogonalization for the record set's batched Muon.

orthogonalize(G) maps a matrix, or a stack of matrices (..., m, n), to one of the same shape whose
singular values are pushed towards one (roughly U V^T for G = U S V^T). The record's optimizer
calls it once per step on ALL conv filters at once: it zero-pads every filter matrix to a common
shape and stacks them, so one batched call does the work of six. Zero padding is harmless here:
padded rows and columns stay exactly zero through every iteration, and they add nothing to the
Frobenius norm used for scaling, so each matrix comes out as if it had been orthogonalized alone.

Differences from the baseline's version:
- retuned quintic coefficients (the Hive's search; same idea, slope ~3.46 at zero);
- the iteration runs in the input's own precision when that is half or bfloat16 (the record
  keeps gradients and momentum in half on CUDA, so no conversion is paid), otherwise in float32.
"""

import torch

QUINTIC_COEFFICIENTS = (3.4576, -4.7391, 2.0843)


def orthogonalize(G: torch.Tensor, steps: int = 3, eps: float = 1e-5) -> torch.Tensor:
    """Approximately orthogonalize the last two dimensions of G (batched over the leading ones)."""
    a, b, c = QUINTIC_COEFFICIENTS
    X = G if G.dtype in (torch.float16, torch.bfloat16) else G.float()
    # The Frobenius norm bounds the largest singular value: after this they all lie in [0, 1].
    # (The Hive first rescales to a scheduled "target magnitude" and then normalizes again; the
    # second normalization cancels the first, so only this one is kept.)
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    tall = X.size(-2) > X.size(-1)
    if tall:  # iterate on the wide orientation, where the Gram matrix X X^T is the small one
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    if tall:
        X = X.mT
    return X
