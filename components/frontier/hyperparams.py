"""Every scalar of the frontier recipe: the record's values, a longer schedule and the curriculum.

The record's (the Hive's) values, with two changes from Fulcrum Research's recipe: the resolution
curriculum (24 px for the first third of training, 28 px for the second, then 32 px) and a longer
schedule that buys back the accuracy small images cost (8.7 epochs against 7.59; Fulcrum's
recipe, which also has an EMA tail, runs 8.875). The stages are fractions of the training steps.
The harness reads batch_size, epochs and label_smoothing; every other key belongs to the
component that names it. Values are plain literals.
"""

HYPERPARAMS = {
    # Harness: the training loop.
    "batch_size": 1536,
    "epochs": 8.7,  # total steps = ceil(epochs * batches per epoch): 279 on CIFAR-10
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
    # Resolution curriculum: the first low_res_fraction of the steps train on crops downsampled to
    # low_res_size, the next mid_res_fraction on mid_res_size, the rest at 32 px (3, 3 and 2.7 epochs).
    "low_res_size": 24,
    "low_res_fraction": 0.345,
    "mid_res_size": 28,
    "mid_res_fraction": 0.345,
    # Test-time augmentation: 0 plain, 1 mirror, 2 mirror x three translations; applied only to
    # the tta_fraction of test images the plain pass is least confident about.
    "tta_level": 2,
    "tta_fraction": 0.25,
    "tta_batch_size": 2000,
}

# The mutator switches these among the listed sizes instead of perturbing them as numbers
# (components/README.md): every size here fits the network's pooling, and none exceeds the crop.
ALTERNATIVES = {
    "low_res_size": [16, 20, 24, 28, 32],
    "mid_res_size": [24, 26, 28, 30, 32],
}
