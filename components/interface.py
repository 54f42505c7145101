"""The contract between the harness and each component module, as data.

Each component is one Python module. The harness looks up the names below in it and calls them
as components/README.md describes. A component may import only torch, numpy, math and typing.
"""

COMPONENT_NAMES = ("newton_schulz", "optimizer", "architecture", "augmentation", "tta", "hyperparams")

ALLOWED_IMPORTS = ("torch", "numpy", "math", "typing")

# For each component, the top-level names it must define and, for callables, their parameters
# in order (None marks a plain value such as a dict).
REQUIRED_NAMES: dict[str, dict[str, tuple[str, ...] | None]] = {
    "newton_schulz": {"orthogonalize": ("G", "steps")},
    "optimizer": {"build_optimizer": ("model", "hp", "total_steps", "steps_per_epoch", "orthogonalize")},
    "architecture": {"build_network": ("hp", "device")},
    "augmentation": {"preprocess": ("images", "hp"), "BatchStream": ("inputs", "labels", "hp")},
    "tta": {"predict": ("model", "inputs", "hp")},
    "hyperparams": {"HYPERPARAMS": None},
}

# Hyperparameters the harness itself reads.
HARNESS_HYPERPARAMS = ("batch_size", "epochs", "label_smoothing")

NUM_CLASSES = 10
