"""The score's default target, confidence and penalty base, in a module that imports nothing.

The CLI shows them as option defaults; keeping them apart from evaluator/statistics.py (numpy,
pydantic) lets `evolve --help` print them without loading the statistics.
"""

DEFAULT_CONFIDENCE = 0.95
DEFAULT_TARGET = 0.94
DEFAULT_PENALTY_BASE = 1e8
