"""The loop's per-proposal pieces that issue 28 (part 5) made cheaper, each timed alone in process CPU time.

- the architecture's normal form (novelty.normalised_text: canonical hash and near-copy key) of a
  new child of the baseline, one simulated site changed, as the simulated proposer makes them;
- the gate's p-value (evaluator/statistics.rank_test_pvalue): 5 screening runs against a
  champion record of 5, 40 and 400 runs;
- the parent draw's average ranks of a pool head of 41 (scipy's rankdata where the checkout has
  no evolve/search/ranks.py).

It imports only what older checkouts have too, so the same file times the code before and after:

    PYTHONPATH=$PWD python bench/loop_pieces.py
    (cd OLD_CHECKOUT && PYTHONPATH=$PWD python /path/to/bench/loop_pieces.py)
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path.cwd()))

from evaluator.component_set import ComponentSet
from evaluator.statistics import rank_test_pvalue
from evolve.search.novelty import normalised_text
from evolve.simulation.proposer import set_site


def per_call_ms(calls: list, function) -> float:
    start = time.process_time()
    for args in calls:
        function(*args)
    return 1000 * (time.process_time() - start) / len(calls)


def main() -> None:
    rng = np.random.default_rng(0)
    source = ComponentSet.shipped("baseline").sources["architecture"]
    normalised_text(source)
    children = [(set_site(source, k % 4, str(k)),) for k in range(300)]
    print(f"architecture normal form: {per_call_ms(children, normalised_text):.2f} ms per new child")
    for size in (5, 40, 400):
        record = [float(v) for v in rng.normal(10, 0.2, size)]
        calls = [(record, [float(v) + 0.05 for v in rng.normal(10, 0.2, 5)]) for _ in range(300)]
        print(f"gate p-value, 5 runs against a record of {size}: {per_call_ms(calls, rank_test_pvalue):.3f} ms")
    try:
        from evolve.search.ranks import average_ranks
    except ImportError:  # a checkout from before it: what the parent draw called then
        from scipy.stats import rankdata

        def average_ranks(values):
            return rankdata(values, method="average")
    pools = [([float(v) for v in np.round(rng.normal(-3, 0.1, 41), 3)],) for _ in range(500)]
    print(f"ranks of a pool head of 41: {per_call_ms(pools, average_ranks):.3f} ms")


if __name__ == "__main__":
    main()
