"""Torch's global switches, set to the harness's values before every run.

A component could flip a global flag (TF32, cuDNN benchmark, default dtype, grad mode) and
thereby change later runs or other candidates; the harness puts them back each time.
"""

import torch

from evaluator.training import reset_torch_flags  # defined there so that exported scripts share it

__all__ = ["current_torch_flags", "reset_torch_flags"]


def current_torch_flags() -> dict[str, object]:
    """The switches reset_torch_flags sets, for tests and for the record."""
    return {
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": str(torch.get_default_dtype()),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "anomaly": torch.is_anomaly_enabled(),
        "cudnn_enabled": torch.backends.cudnn.enabled,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
