"""Newton-Schulz orthogonalization, the core of the Muon update.

orthogonalize(G) maps a matrix (or a batch of matrices, shape (..., m, n)) to a matrix of the
same shape whose singular values are pushed towards one, approximating U V^T for G = U S V^T.
The quintic coefficients maximize the slope at zero rather than converging exactly: after three
steps the singular values land roughly in [0.5, 1.5], which trains as well as U V^T and costs
fewer matrix products.
"""

import torch

QUINTIC_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(G: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """Approximately orthogonalize the last two dimensions of G, in bfloat16."""
    a, b, c = QUINTIC_COEFFICIENTS
    X = G.bfloat16()
    # Scale so that the largest singular value is at most one (Frobenius norm bounds it).
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    tall = G.size(-2) > G.size(-1)
    if tall:  # iterate on the wide orientation: the Gram matrix X X^T is then the smaller one
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if tall:
        X = X.mT
    return X
