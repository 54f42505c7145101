"""What the sequential promotion test saves, exactly: pairs and power against the fixed-sample sign test.

    python bench/sequential_promotion.py [--looks 8] [--futility 0.2] [--power 0.8]

For attempts k = 1, 5, 20 and 100 (alpha_k = 0.05 / (k (k + 1)), rule.py) and a promised per-pair
win chance q (what the screening estimates, policy.py), both designs are sized for `--power` at q
(the fixed one by rule.sign_test_power, the sequential one by sequential.pairs_for_power, up to 64
pairs), then walked exactly (no sampling) at true win chances 0.5 (no gain: the chance of passing
is the attempt's error), 0.65, q and 1.0: the chance of passing and the pairs used on average.
The fixed design always uses all its pairs. Time test only: the accuracy tests are not modelled.
Results: docs/BENCHMARKS.md, "Promotions sized by the evidence".
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from evaluator.promotion_policy.rule import attempt_alpha, pairs_for, sign_test_power
from evaluator.promotion_policy.rule import pairs_for_power as fixed_pairs_for_power
from evaluator.promotion_policy.sequential import operating, pairs_for_power, plan

TRUE_CHANCES = (0.5, 0.65, None, 1.0)  # None: the promised chance itself


def rows(looks: int, futility: float, power: float) -> list[list[str]]:
    out = []
    for attempt in (1, 5, 20, 100):
        alpha = attempt_alpha(0.05, attempt)
        for promised in (0.75, 0.85, 0.95):
            fixed = fixed_pairs_for_power(alpha, promised, power, 64)
            sequential = pairs_for_power(alpha, promised, power, 64, looks, futility, least=pairs_for(alpha))
            if fixed is None or sequential is None:
                out.append([str(attempt), f"{alpha:.2g}", f"{promised:.2f}", "-", "-", *["cannot reach the power in 64 pairs"] + [""] * 3])
                continue
            p = plan(sequential, alpha, looks)
            cells = []
            for chance in TRUE_CHANCES:
                q = promised if chance is None else chance
                o = operating(p, q, promised, futility)
                cells.append(f"{o.expected_pairs:.1f} of {fixed} ({o.power:.3g} vs {sign_test_power(fixed, alpha, q):.3g})")
            out.append([str(attempt), f"{alpha:.2g}", f"{promised:.2f}", str(fixed), str(sequential), *cells])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks", type=int, default=8)
    parser.add_argument("--futility", type=float, default=0.2)
    parser.add_argument("--power", type=float, default=0.8)
    args = parser.parse_args(argv)
    headers = ["attempt", "alpha", "promised q", "fixed pairs", "sequential most", "no gain (0.5)", "0.65", "at q", "sure (1.0)"]
    table = Table(*headers, title=f"average pairs, sequential (chance of passing, sequential vs fixed); looks {args.looks}, "
                                  f"futility {args.futility}, power {args.power}")
    body = rows(args.looks, args.futility, args.power)
    for row in body:
        table.add_row(*row)
    Console(width=220).print(table)
    print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
    for row in body:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
