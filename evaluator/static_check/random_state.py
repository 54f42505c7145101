"""Random state, as data: what lets a component fix, restore or fork the random choices of a run.

The harness seeds torch before every run (evaluator/training.py) and judges a candidate over
several seeds; a component that fixes its own randomness could keep a lucky draw (an
augmentation order, an initialisation) whatever the harness's seed. The rule is structural, by
the name of what is called or assigned, on any object, because the generators are reached in
too many ways to list (`torch.default_generator`, `torch.cuda.default_generators[0]`, a bit
generator inside a numpy Generator, an object the check cannot name):

- a name containing "seed" (manual_seed, manual_seed_all, seed, seed_all, SeedSequence,
  seed_seq), except initial_seed, which only reads;
- a name that sets or restores state: set_state, setstate, set_rng_state(_all),
  graphsafe_set_state, set_offset (the position in torch's Philox stream), set_bit_generator
  (numpy's global generator replaced); one that hands out a second handle on it: clone_state,
  graphsafe_get_state; one that forks or moves it: fork_rng, and numpy's spawn, jumped and
  advance;
- an assignment to an attribute named `state` or `bit_generator` (numpy's
  `rng.bit_generator.state = saved`), also through setattr;
- generators built with a seed (np.random.default_rng(0), PCG64(0), RandomState(0)), and
  torch.Generator at all: a new one starts from torch's fixed default seed (67280421310721)
  whatever the harness seeded; those constructors may only be called directly, so that no alias
  or container hides the arguments;
- a class derived from a generator class, and `__init__` called on anything but `super()`, `self`,
  `cls` or a named class: `rng.__init__(5)` re-seeds a numpy RandomState or bit generator.

Reading is fine: get_state, get_rng_state(_all), initial_seed, getstate, generate_state, get_offset,
get_bit_generator, and the `state` property read. Drawing from the global generators (torch.rand,
torch.randint, torch.randperm, np.random.default_rng() without a seed) is what a component should do.

tests/test_static_check_seed.py enumerates every public attribute of the installed generator
classes and random modules and requires each to be refused by this rule, a reader
(RNG_STATE_READERS), or a reviewed drawing or descriptive name (RNG_DRAWING_NAMES), so that a
method added by a newer torch or numpy fails the test until someone decides which it is.

Like the rest of the static check this is a filter, not a boundary: it reads names in the text
and cannot see every object a value may turn out to be. The kernel-jailed worker and the
harness's seeding before every run are what a run relies on; the filter turns the plain attempts
into feedback the model can act on.
"""

import re

# Pure readers: they return a copy of the state, or the seed, and change nothing.
# (SeedSequence.generate_state derives numbers from the sequence, which cannot be built with a seed.)
RNG_STATE_READERS = frozenset({
    "get_state", "get_rng_state", "get_rng_state_all", "initial_seed", "getstate", "generate_state",
    "get_offset", "get_bit_generator",
})
# Names that set, restore or fork random state, as a pattern over the lowercased name (any object).
RNG_STATE_PATTERN = re.compile(
    r"seed|set_?(?:rng_)?state|clone_state|graphsafe_|fork_rng|set_?offset|set_?bit_?generator")
# Methods that fork or move a numpy generator's state, matched as whole names (`advance` is a common word).
RNG_FORK_NAMES = frozenset({"spawn", "jumped", "advance"})
# Reviewed public attributes of the generator classes and random modules that only draw numbers or
# describe the generator (its device, a lock, the entropy it was made from), and the generator
# classes and factories themselves (their seeds are judged at the call). Nothing here sets state.
# (A bit generator's `capsule`, `cffi` and `ctypes` hand out the address of its state: the
# raw-memory and forbidden-name rules refuse them.)
# tests/test_static_check_seed.py fails on a public name that is neither refused, a reader nor here.
RNG_DRAWING_NAMES = frozenset({
    # torch.Generator, torch.random
    "device", "default_generator", "Generator", "thread_safe_generator",
    # numpy bit generators and SeedSequence
    "random_raw", "lock", "entropy", "n_children_spawned", "pool", "pool_size",
    "spawn_key", "state",  # `state` read is a copy; its assignment is refused (RNG_STATE_STORES)
    "bit_generator",  # read: the generator's own bit generator; its assignment is refused
    # numpy.random.Generator, RandomState and the numpy.random module functions
    "beta", "binomial", "bytes", "chisquare", "choice", "dirichlet", "exponential", "f", "gamma", "geometric",
    "gumbel", "hypergeometric", "integers", "laplace", "logistic", "lognormal", "logseries", "multinomial",
    "multivariate_hypergeometric", "multivariate_normal", "negative_binomial", "noncentral_chisquare",
    "noncentral_f", "normal", "pareto", "permutation", "permuted", "poisson", "power", "rand", "randint", "randn",
    "random", "random_integers", "random_sample", "ranf", "rayleigh", "sample", "shuffle", "standard_cauchy",
    "standard_exponential", "standard_gamma", "standard_normal", "standard_t", "tomaxint", "triangular",
    "uniform", "vonmises", "wald", "weibull", "zipf",
    "BitGenerator", "MT19937", "PCG64", "PCG64DXSM", "Philox", "RandomState", "SFC64", "default_rng",
    # random.Random (the module cannot be imported; its methods may still be reached on an object)
    "VERSION", "betavariate", "binomialvariate", "choices", "expovariate", "gammavariate", "gauss",
    "getrandbits", "lognormvariate", "normalvariate", "paretovariate", "randbytes", "randrange",
    "vonmisesvariate", "weibullvariate",
})
# Attributes whose assignment replaces a generator's state (numpy's BitGenerator.state, Generator.bit_generator).
RNG_STATE_STORES = frozenset({"state", "bit_generator"})

# Library functions refused by identity as well, whatever name reaches them (library.py).
SEED_FUNCTIONS = frozenset({
    "torch.seed", "torch.manual_seed", "torch.set_rng_state", "torch.random.fork_rng",
    "torch.cuda.seed", "torch.cuda.seed_all", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all",
    "torch.cuda.set_rng_state", "torch.cuda.set_rng_state_all",
    "numpy.random.seed", "numpy.random.set_state",
})
# Constructors whose arguments may hold a seed: (dotted name, whether any call is refused). A
# torch.Generator always starts from the same default seed; the others draw fresh entropy when
# called without arguments. numpy's bit generators (subclasses of numpy.random.BitGenerator) are
# matched by class, so a bit generator added by a newer numpy is covered as well.
SEEDED_CONSTRUCTORS: dict[str, bool] = {
    "torch.Generator": True,
    "numpy.random.default_rng": False,
    "numpy.random.RandomState": False,
    "numpy.random.SeedSequence": False,
    "numpy.random.BitGenerator": False,
}
# Generator classes: not to be subclassed, nor their `__init__` called on an existing object.
RNG_CLASSES = ("torch.Generator", "numpy.random.Generator", "numpy.random.RandomState",
               "numpy.random.BitGenerator", "numpy.random.SeedSequence")

SEED_FIX = (
    "remove it: the harness seeds torch before every run; draw randomness from the global generators "
    "(torch.rand, torch.randint, torch.randperm, np.random.default_rng() without a seed) without fixing, "
    "restoring or copying their state"
)
SETS_STATE = "sets, restores or forks random state"
STORES_STATE = "replaces a generator's random state"
FIXED_GENERATOR = "creates a generator with a fixed seed"
DEFAULT_SEEDED = "creates a torch generator, which starts from torch's fixed default seed whatever the harness seeded"
HIDDEN_CONSTRUCTOR = ("uses a generator constructor other than by calling it directly, where the check cannot see "
                      "the seed it is given")
INIT_FIX = ("call `__init__` only as `super().__init__(...)` or on a class you name; build a new object instead of "
            "re-initialising one (a numpy generator's `__init__(seed)` re-seeds it)")


def sets_random_state(name: str) -> bool:
    """True for an attribute name that sets, restores, forks or moves random state (readers excepted)."""
    if name in RNG_STATE_READERS:
        return False
    return name in RNG_FORK_NAMES or RNG_STATE_PATTERN.search(name.lower()) is not None
