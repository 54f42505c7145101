"""The search: the loop, its population, proposers, the built-in mutator and the executor."""
