"""The search at cluster scale without a cluster: a simulated executor behind the executor seam.

Only the evaluation is replaced; the loop, the database, the promotion rule and the CLI are the
real ones. Each candidate gets a hidden true time and accuracy from a stated landscape
(landscape.py), each timed run draws its sample around that truth from a noise model whose
parameters come from measurements (noise.py), the cascade and the paired re-measurement are
simulated with device seconds of their own (cascade.py, promotion.py), and SimulatedExecutor
(executor.py) answers the loop's jobs at once. Selected with `executor = "simulated"`
(`evolve start --executor simulated`); its settings are the `[simulation]` section (settings.py).

This package's own modules never import torch, so thousands of candidates a minute are
evaluated; executor.py subclasses the executor protocol of evolve/search/executor.py, which does
(through evaluator.cascade), as does the search loop itself. Nothing is imported here, so that the
configuration (evolve/config.py imports settings.py) stays light.
"""
