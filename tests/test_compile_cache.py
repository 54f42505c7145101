"""The compile cache of a component set (issue 28, part 2; evaluator/sandbox/compile_cache.py):
one folder per set, filled by a worker that never gets real data, out of every worker's reach.

That the smoke worker never gets "go" nor a descriptor: tests/test_fresh_workers.py.
"""

import ast
import errno
import os
import platform
import re
from pathlib import Path

import pytest

import evaluator.runs as runs_module
from evaluator.component_set import ComponentSet
from evaluator.harness import warm_up_size
from evaluator.results import RunSample
from evaluator.runs import prepare_set, scored_runs, set_cache, worker_setup
from evaluator.sandbox import jail
from evaluator.sandbox.compile_cache import CompileCache, copy_tree, evict
from evaluator.sandbox.limits import WorkerLimits
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure
from evaluator.settings import HarnessSettings
from tests.test_jail_channels import LIMITS, hostile_set, native, script, unjailed

HARNESS = HarnessSettings(device="cpu", data="synthetic", hyperparams={"epochs": 1})


def other_set(baseline_set: ComponentSet) -> ComponentSet:
    return baseline_set.with_component("tta", baseline_set.sources["tta"] + "\n# another candidate\n")


def test_two_sets_get_different_folders_and_one_set_the_same(baseline_set):
    limits = WorkerLimits()
    one, again, other = (set_cache(s, HARNESS, limits).folder for s in (baseline_set, baseline_set, other_set(baseline_set)))
    assert one == again and one != other
    compiled = set_cache(baseline_set, HARNESS.model_copy(update={"compile": True}), limits).folder
    threads = set_cache(baseline_set, HARNESS, WorkerLimits(threads=2)).folder
    assert len({one, compiled, threads}) == 3  # what the compiled code depends on is in the key


def test_the_copy_follows_no_link_and_opens_no_fifo(tmp_path):
    """A smoke worker could plant a link to a file only the parent may read, or a FIFO that would
    block the parent's copy: neither is followed or opened."""
    secret = tmp_path / "labels.npz"
    secret.write_bytes(b"test labels")
    source = tmp_path / "worker-cache"
    (source / "inductor" / "ab").mkdir(parents=True)
    (source / "inductor" / "ab" / "kernel.py").write_text("compiled")
    (source / "steal").symlink_to(secret)
    (source / "inductor" / "steal-dir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(source / "block")
    copied = copy_tree(source, tmp_path / "copy")
    found = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert found == ["inductor", "inductor/ab", "inductor/ab/kernel.py"]
    assert copied == len("compiled")
    # the worker's whole cache folder replaced by a link to the parent's secrets, or removed: nothing copied
    (tmp_path / "linked-cache").symlink_to(tmp_path, target_is_directory=True)
    assert copy_tree(tmp_path / "linked-cache", tmp_path / "copy-2") == 0 and not any((tmp_path / "copy-2").iterdir())
    assert copy_tree(tmp_path / "removed", tmp_path / "copy-3") == 0


def finished_cache(root: Path, key: str, size: int = 10) -> CompileCache:
    cache = CompileCache(key, root)
    source = root / f"{key}-source"
    source.mkdir()
    (source / "kernel.bin").write_bytes(b"x" * size)
    with cache.locked():
        cache.harvest(source, full_warmup_seconds=1.0)
    return cache


def test_eviction_removes_the_least_recently_used_not_the_one_just_filled(tmp_path):
    old, recent, new = (finished_cache(tmp_path, key, 100) for key in ("old", "recent", "new"))
    os.utime(old.folder / "finished", (1, 1))
    os.utime(new.folder / "finished", (2, 2))  # the oldest use of all, but just filled
    assert evict(250, keep="new", root=tmp_path) == ["old"]
    assert not old.finished() and recent.finished() and new.finished()
    with recent.locked(shared=True):  # being seeded from: not removed
        assert evict(50, keep="new", root=tmp_path) == []
    with pytest.raises(FileNotFoundError, match="not finished"):
        old.seed_into(tmp_path / "worker")


def test_a_finished_cache_is_never_refilled(baseline_set, tmp_path, monkeypatch):
    fills = []
    (tmp_path / "worker-cache").mkdir()

    def smoke_worker(*args, fill: CompileCache | None = None, seeded: CompileCache | None = None) -> None:
        fills.append((fill, seeded))
        if fill is not None:
            fill.harvest(tmp_path / "worker-cache", full_warmup_seconds=1.0)

    monkeypatch.setattr(runs_module, "smoke_worker", smoke_worker)
    for smoke in (False, False, True):
        prepare_set(baseline_set, None, HARNESS, WorkerLimits(), smoke=smoke)
    assert [(fill is not None, seeded is not None) for fill, seeded in fills] == [(True, False), (False, True)]


def test_both_sides_of_a_pair_warm_up_alike(baseline_set, monkeypatch):
    """A promotion's pairs: every worker of either side has its own set's cache and the same short warm-up."""
    warm_ups = []

    class FakeWorker:
        def __init__(self, limits, device, gpu=None, cache=None):
            self.cache = cache

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(runs_module, "prepare_set", lambda component_set, *a, **k: set_cache(component_set, HARNESS, WorkerLimits()))
    monkeypatch.setattr(runs_module, "SandboxedWorker", FakeWorker)
    monkeypatch.setattr(runs_module, "warm_up_worker", lambda worker, component_set, dataset, harness, seed, batches: warm_ups.append(
        (component_set, worker.cache.folder, batches)))
    monkeypatch.setattr(runs_module, "timed_sample", lambda worker, run, seed, *a: RunSample(
        run=run, seed=seed, accuracy=0.9, time_seconds=1.0, device_name="cpu", torch_version="test"))
    sides = {"candidate": other_set(baseline_set), "incumbent": baseline_set}
    list(scored_runs(sides, None, HARNESS, WorkerLimits(), 3, [], promotion_attempt=1))
    assert len(warm_ups) == 6 and {batches for *_, batches in warm_ups} == {HARNESS.warmup_batches}
    for component_set, folder, _ in warm_ups:
        assert folder == set_cache(component_set, HARNESS, WorkerLimits()).folder
    assert len({folder for _, folder, _ in warm_ups}) == 2


def test_a_short_warm_up_sees_every_batch_shape():
    assert warm_up_size(50_000, 2000, 2) == 4000  # two full batches an epoch
    assert warm_up_size(50_100, 2000, 2) == 4100  # and the real set's remainder (a last partial batch)
    assert warm_up_size(3000, 2000, 2) == 3000  # never more than the real set


# --- the kernel: a worker with a copy cannot reach the shared folder ---------------------------------------

PROBE = r'''
out = {}
for name, path, flags in (("read", SHARED + "/kernel.bin", 0), ("write", SHARED + "/kernel.bin", 1),
                          ("create", SHARED + "/poison.py", 0o100 | 1), ("list", SHARED, 0o200000),
                          ("own_copy", OWN + "/kernel.bin", 0)):
    out[name] = call("open", S(path.encode()), L(flags), L(0o600))
report(out)
'''


@pytest.mark.skipif(jail.landlock_abi() < 1 or jail.namespaces() is None or platform.machine() != "x86_64",
                    reason="no kernel jail here (or not x86_64, whose syscall numbers the probe uses)")
def test_a_later_worker_can_neither_read_nor_write_the_shared_cache(baseline_set, private_compile_caches):
    """Native open(2) of the set's finished folder from a worker seeded from it: refused by Landlock
    (EACCES), whatever the flags; the worker's own copy is readable. The same probe succeeds outside
    the jail, so the refusal is the kernel's jail."""
    cache = finished_cache(private_compile_caches, "shared")
    with SandboxedWorker(LIMITS, "cpu", cache=cache) as worker:
        probe = script(PROBE, SHARED=str(cache.files), OWN=str(worker.workdir / "cache"))
        hostile = hostile_set(baseline_set, native(probe))
        worker.request(worker_setup(hostile, "cpu", False, {}, worker), "ready", LIMITS.setup_seconds)
        with pytest.raises(WorkerFailure) as failure:
            worker.request({"type": "warmup", "seed": 0, "num_train": 16, "num_test": 16}, "warm", LIMITS.warmup_seconds)
    found = re.search(r"PROBE(.*?)ENDPROBE", str(failure.value), re.DOTALL)
    assert found, f"the probe did not report: {failure.value}"
    jailed = ast.literal_eval(found.group(1))
    assert {k: jailed[k] for k in ("read", "write", "create", "list")} == dict.fromkeys(("read", "write", "create", "list"), -errno.EACCES)
    assert jailed["own_copy"] >= 0, jailed
    host = unjailed(script(PROBE, SHARED=str(cache.files), OWN=str(cache.files)))
    assert host["read"] >= 0 and host["write"] >= 0, host
    (cache.files / "poison.py").unlink()
    assert (cache.files / "kernel.bin").read_bytes() == b"x" * 10  # the shared file is unchanged
