"""The compile cache of one component set: filled once before real data exists, then only copied out.

Every scored sample comes from a fresh worker (evaluator/runs.py), and with `--compile` each would
compile from scratch in its own private folder. This module lets the workers of one component
set share what one of them compiled, without giving any worker a path to a shared folder:

1. The set's *smoke worker* (evaluator/runs.py `prepare_set`) warms up on random data and is never
   sent a "go", so no real data ever enters it. Once the parent has killed it (every process of
   its PID namespace gone, so nothing writes any more), the parent copies its private compile
   cache (the worker folder's `cache/`, where TORCHINDUCTOR_CACHE_DIR and TRITON_CACHE_DIR point)
   into this folder and marks it finished (`harvest`).
2. Every later worker of the set gets a private copy of the finished folder in its own `cache/`
   before it starts (`seed_into`); its Landlock policy names neither this folder nor any other
   set's, so the kernel refuses it every access to them (tests/test_compile_cache.py).
3. The folder is keyed by a hash of everything the compiled code depends on (`cache_key`: the
   set's sources, device, compile flag, hyperparameters, threads, torch and Python versions), so
   two sets never share one, and a candidate's artefacts reach only workers of its own sources.
   A finished folder is never written again.

The copies move regular files and folders only, opened without following links: a link or FIFO
the smoke worker planted (its whole `cache/` replaced by a link included) is not followed, so it
cannot make the parent copy a file the worker could not read (the dataset cache) or block on a pipe. The folders live under the dataset cache
folder (`cache_dir()/compile`), which no worker may read. Finished folders beyond
`WorkerLimits.compile_cache_bytes` are removed, least recently seeded first.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from evaluator.data import cache_dir

FINISHED = "finished"  # the parent's marker beside `files/`: the filling warm-up's seconds; its mtime is the last use
LOCK = "lock"
FILES = "files"
KEY_FIELDS = ("sources", "device", "compile", "hyperparams", "threads")


def cache_key(setup: dict) -> str:
    """What the compiled code of a worker with this setup message depends on, hashed."""
    fields = {name: setup[name] for name in KEY_FIELDS}
    fields.update(torch=torch.__version__, python=sys.version, machine=platform.machine())
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def cache_root() -> Path:
    return cache_dir() / "compile"


class CompileCache:
    """One component set's cache folder (for one setup): `files/` and the `finished` marker."""

    def __init__(self, key: str, root: Path | None = None):
        self.folder = (root or cache_root()) / key
        self.files = self.folder / FILES

    def finished(self) -> bool:
        return (self.folder / FINISHED).exists()

    def full_warmup_seconds(self) -> float:
        """The parent's clock of the full warm-up that filled the folder (the run limit follows it)."""
        return float(json.loads((self.folder / FINISHED).read_text())["full_warmup_seconds"])

    @contextlib.contextmanager
    def locked(self, shared: bool = False) -> Iterator[None]:
        """A lock of the folder between this host's evaluators (slots): exclusive while filled."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK, "a") as f:
            fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield

    def harvest(self, worker_cache: Path, full_warmup_seconds: float) -> None:
        """Copy a dead smoke worker's private cache in and mark the folder finished (hold `locked`)."""
        staging = self.folder / "staging"
        for stale in (staging, self.files):  # left by a parent killed while it filled the folder
            if stale.exists():
                shutil.rmtree(stale)
        copy_tree(worker_cache, staging)
        staging.rename(self.files)
        (self.folder / FINISHED).write_text(json.dumps({"full_warmup_seconds": full_warmup_seconds}))

    def seed_into(self, worker_cache: Path) -> None:
        """A private copy of the finished files for a worker not yet started; marks the use."""
        with self.locked(shared=True):
            if not self.finished():
                raise FileNotFoundError(f"the compile cache {self.folder} is not finished (removed to make room meanwhile?)")
            copy_tree(self.files, worker_cache)
            os.utime(self.folder / FINISHED)


def copy_tree(source: Path, target: Path) -> int:
    """Copy regular files and folders beneath source; never follows a link. Returns bytes copied.

    A `source` that is a link (a worker may replace its own `cache/` by one to the dataset cache) or
    no folder at all (it removed it) is copied as an empty folder."""
    target.mkdir(parents=True, exist_ok=True)
    if source.is_symlink() or not source.is_dir():
        return 0
    copied = 0
    with os.scandir(source) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                copied += copy_tree(Path(entry.path), target / entry.name)
            elif entry.is_file(follow_symlinks=False):
                copied += copy_file(Path(entry.path), target / entry.name)
            # links, FIFOs, sockets, devices: not compiled artefacts; never followed or opened
    return copied


def copy_file(source: Path, target: Path) -> int:
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return 0  # replaced by something else meanwhile (only a live worker could)
        with open(target, "xb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            return dst.tell()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def evict(limit_bytes: int, keep: str, root: Path | None = None) -> list[str]:
    """Remove finished folders, least recently used first, until the rest fit `limit_bytes`;
    never `keep` (the one just filled) nor a folder another evaluator holds locked."""
    root = root or cache_root()
    finished = sorted((p.parent for p in root.glob(f"*/{FINISHED}")), key=lambda p: (p / FINISHED).stat().st_mtime)
    sizes = {p: folder_bytes(p / FILES) for p in finished}
    total, removed = sum(sizes.values()), []
    for folder in finished:
        if total <= limit_bytes:
            break
        if folder.name == keep or not _remove_unless_locked(folder):
            continue
        total -= sizes[folder]
        removed.append(folder.name)
    return removed


def _remove_unless_locked(folder: Path) -> bool:
    with open(folder / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use: being seeded from or filled
        (folder / FINISHED).unlink()
        shutil.rmtree(folder / FILES)
        return True
