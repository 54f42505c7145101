"""Every scalar of the airbench94_muon recipe, in one place.

The harness reads HYPERPARAMS and hands a copy of it to every other component. Keys the harness
itself needs: batch_size, epochs, label_smoothing. All other keys belong to the component that
names them. Values are plain literals so that the built-in mutator can perturb them.
"""

HYPERPARAMS = {
    # Harness: the training loop.
    "batch_size": 2000,
    "epochs": 8.0,  # total steps = ceil(epochs * batches per epoch)
    "label_smoothing": 0.2,
    # Optimizer: SGD with Nesterov momentum for biases and head, Muon for the conv filters.
    "bias_lr": 0.053,
    "head_lr": 0.67,
    "weight_decay": 2e-6,  # per example: multiplied by batch_size, divided by each group's lr
    "sgd_momentum": 0.85,
    "muon_lr": 0.24,
    "muon_momentum": 0.6,
    "whiten_bias_epochs": 3.0,  # the whitening bias trains only this long, then freezes
    "newton_schulz_steps": 3,
    # Architecture.
    "width1": 64,
    "width2": 256,
    "width3": 256,
    "whiten_kernel_size": 2,
    "whiten_eps": 5e-4,
    "whiten_init_images": 5000,
    "batchnorm_momentum": 0.6,
    "batchnorm_eps": 1e-12,
    # Augmentation.
    "flip": True,
    "translate": 2,
    # Test-time augmentation: 0 plain, 1 mirror, 2 mirror and one-pixel translations.
    "tta_level": 2,
    "tta_batch_size": 2000,
}

# Settings the built-in mutator switches between listed values instead of perturbing them
# (see components/README.md): tta_level indexes the views of tta.py, so only these values exist.
ALTERNATIVES = {
    "flip": [True, False],
    "translate": [0, 1, 2, 3],
    "tta_level": [0, 1, 2],
    "whiten_kernel_size": [2, 3],
}
