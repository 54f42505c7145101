"""Every scalar of the record recipe (the Hive's cifar10_speedrun.py), in one place.

The Hive retuned airbench94_muon's values: a smaller batch, fewer epochs, less label smoothing,
a whitening bias that trains for a fifth of an epoch, and new momenta and learning rates. The keys
are the baseline's (so that the 'tiny' scale and the mutator apply to both sets) plus the ones the
record's new tricks read. The harness reads batch_size, epochs and label_smoothing; every other
key belongs to the component that names it. Values are plain literals.
"""

HYPERPARAMS = {
    # Harness: the training loop.
    "batch_size": 1536,
    "epochs": 7.59,  # total steps = ceil(epochs * batches per epoch): 243 on CIFAR-10
    "label_smoothing": 0.09,
    # Optimizer: SGD with Nesterov momentum for biases and head, batched Muon for the conv filters.
    "bias_lr": 0.0573,
    "head_lr": 0.5415,
    "weight_decay": 1.0418e-6,  # per example: multiplied by batch_size, divided by each SGD group's lr
    "sgd_momentum": 0.825,
    "muon_lr": 0.205,
    "muon_momentum": 0.655,
    "muon_weight_decay": 1.0418e-6,  # per example: filters shrink by (1 - lr * this * batch_size) per step
    "whiten_bias_epochs": 0.19,  # the whitening bias trains only this long, then freezes
    "newton_schulz_steps": 3,
    # Filters are renormalized every k steps instead of every step; k grows linearly over training
    # from renorm_interval_start to renorm_interval_start + renorm_interval_growth.
    "renorm_interval_start": 2,
    "renorm_interval_growth": 15,
    # Architecture.
    "width1": 64,
    "width2": 256,
    "width3": 256,
    "whiten_kernel_size": 2,
    "whiten_eps": 5e-4,
    "whiten_init_images": 960,
    "batchnorm_momentum": 0.5566,
    "batchnorm_eps": 1e-12,
    # Augmentation.
    "flip": True,
    "translate": 2,
    "brightness": 0.1399,  # each image's brightness shifts by up to this much every epoch
    "contrast": 0.1308,  # ... and its contrast scales by up to 1 +- this much
    "compile_augmentation": True,  # torch.compile the crop and the jitter (CUDA only)
    # Test-time augmentation: 0 plain, 1 mirror, 2 mirror x three translations; applied only to
    # the tta_fraction of test images the plain pass is least confident about.
    "tta_level": 2,
    "tta_fraction": 0.25,
    "tta_batch_size": 2000,
}
