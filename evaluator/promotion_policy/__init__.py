"""The promotion policy: the gate to a paired comparison (gate.py), the rule that decides on the
pairs (rule.py), and PromotionPolicy (policy.py), the one object every caller uses."""
