"""The score's default numbers, in a module that imports nothing.

The CLI shows them as option defaults and the settings models as field defaults; keeping them
apart from evaluator/statistics.py (numpy) lets `evolve --help` and the inspection commands
start without loading the statistics.
"""

DEFAULT_CONFIDENCE = 0.95
DEFAULT_TARGET = 0.94
DEFAULT_PENALTY_BASE = 1e8
DEFAULT_REFERENCE_RUNS = 25
DEFAULT_ACCURACY_STD_FLOOR = 0.0014  # airbench94's per-run accuracy std on real CIFAR-10
