"""Ctrl-C during a search: the first stops it gently, the second kills every worker at once.

The loop's thread owns every database write, so the signal handler never raises into it (an
exception in the middle of a write would lose what it was writing). It only records the
request; the loop looks at it between steps:

1. first Ctrl-C (SIGINT): start nothing new, let running evaluations and LLM calls finish and
   store them, then stop;
2. second Ctrl-C, or SIGTERM: kill the whole process tree below this process now (every
   sandboxed worker's process group and anything those started), put the abandoned candidates
   back to pending for `--resume`, and exit with status 130 (143 for SIGTERM);
3. a third Ctrl-C, while that cleanup is under way, exits at once (the database's transactions
   keep what was committed; `--resume` re-queues whatever was still running).

Workers run in their own sessions (the terminal's Ctrl-C never reaches them), so only this
process can end them: kill_process_tree walks its children with psutil.
"""

import os
import signal
import sys
import threading
from types import FrameType

import psutil

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a process ended by Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


def kill_process_tree(pid: int | None = None) -> int:
    """SIGKILL every descendant of `pid` (default: this process) and their process groups; the count killed.

    Each worker leads its own process group (start_new_session), so killing the group also reaches
    a grandchild that was re-parented away from the tree; the tree walk reaches the rest.
    """
    root = psutil.Process(pid or os.getpid())
    try:
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    own_group = os.getpgid(root.pid)
    groups = set()
    for child in children:
        try:
            group = os.getpgid(child.pid)
        except ProcessLookupError:
            continue
        if group != own_group:
            groups.add(group)
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group ended on its own meanwhile
    killed = 0
    for child in children:
        try:
            child.kill()
            killed += 1
        except psutil.NoSuchProcess:
            killed += 1  # already gone with its group
    psutil.wait_procs(children, timeout=5)
    return killed


class Interrupts:
    """Counts Ctrl-C presses while installed (a context manager; only in the main thread)."""

    def __init__(self) -> None:
        self.presses = 0
        self.exit_code = EXIT_INTERRUPTED
        self.abandon = threading.Event()  # set on the second Ctrl-C or SIGTERM: stop waiting, kill, leave
        self._previous: dict[int, object] = {}

    @property
    def stop_requested(self) -> bool:
        return self.presses > 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            self.exit_code = EXIT_TERMINATED
            self.presses = max(self.presses, 1)
        self.presses += 1
        if self.presses >= 3:
            kill_process_tree()
            sys.stderr.write("\nthird interrupt: exiting now; `evolve start --resume` re-queues what was running\n")
            sys.stderr.flush()
            os._exit(self.exit_code)
        if self.presses >= 2:
            kill_process_tree()  # at once, from the handler: the loop may be blocked for a while
            self.abandon.set()

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
