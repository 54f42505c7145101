"""A runtime guard in the worker, behind the static check: a PEP 578 audit hook.

Once installed (before any candidate module is loaded) it cannot be removed. It refuses, when
candidate code is on the call stack, the operations a component has no business doing: opening
files outside the Python installation and the worker's own folders, starting processes or
threads, sockets, ctypes, tracing, exec or import of its own choosing. Frame and garbage-collector
introspection is left to the static check: the worker holds no test labels and no authoritative
clock, so there is nothing in its memory worth finding.
Torch's compiler runs under candidate frames (it traces their forward), so operations whose
nearest non-standard-library caller is torch or triton itself are allowed.
"""

import os
import sys
import sysconfig
import threading

CANDIDATE_FILE_PREFIX = "<component "

# Refused whenever candidate code is anywhere on the stack (unless torch itself is the caller).
GUARDED_EVENTS = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
    "sys.settrace", "sys.setprofile", "sys.addaudithook",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.string_at", "ctypes.cdata", "ctypes.addressof",
    "_thread.start_new_thread", "os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "os.chdir",
    "exec", "compile", "import", "open",
}
SYSTEM_READABLE = ("/sys/", "/dev/null", "/dev/urandom", "/usr/lib", "/usr/local/cuda")
TRUSTED_CALLERS = ("torch" + os.sep, "triton" + os.sep, "functorch" + os.sep, "sympy" + os.sep)


class GuardViolation(PermissionError):
    """Candidate code attempted an operation outside the component contract."""


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib")})


def _readable_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, paths["purelib"], paths["platlib"], *_stdlib_dirs()}
    roots.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    return tuple(os.path.realpath(r) for r in roots)


class Guard:
    def __init__(self, writable_dirs: list[str]):
        self.writable = tuple(os.path.realpath(d) for d in writable_dirs)
        self.readable = _readable_roots() + self.writable
        self.stdlib = _stdlib_dirs()
        self.local = threading.local()
        self.violations: list[str] = []

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if event not in GUARDED_EVENTS or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            self._check(event, args)
        finally:
            self.local.busy = False

    def _check(self, event: str, args: tuple) -> None:
        frames = self._stack()
        if not any(f.startswith(CANDIDATE_FILE_PREFIX) for f in frames):
            return
        caller = next((f for f in frames if not self._is_stdlib(f)), "")
        if event == "open" and self._open_allowed(args):
            return
        if caller.startswith(CANDIDATE_FILE_PREFIX):
            if event == "import" and str(args[0]).split(".")[0] in ("torch", "numpy", "math", "typing"):
                return
            self._refuse(event, args, caller)
        if event in ("exec", "compile", "import"):
            return  # torch compiling or lazily importing on behalf of a candidate
        if any(part in caller for part in TRUSTED_CALLERS) and event != "open":
            return
        self._refuse(event, args, caller)

    def _stack(self) -> list[str]:
        frame, files = sys._getframe(1), []
        while frame is not None:
            files.append(frame.f_code.co_filename)
            frame = frame.f_back
        return files

    def _is_stdlib(self, filename: str) -> bool:
        return filename.startswith("<frozen") or (
            filename.startswith(self.stdlib) and "site-packages" not in filename
        ) or filename == __file__

    def _open_allowed(self, args: tuple) -> bool:
        path, mode = args[0], args[1] if len(args) > 1 else "r"
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor: whose it is cannot be known
        real = os.path.realpath(os.fsdecode(path))
        if mode is None:  # os.open: the flags say whether it writes
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        else:
            writing = any(c in str(mode) for c in "wax+")
        if not writing and real.startswith(SYSTEM_READABLE + (f"/proc/{os.getpid()}/",)):
            return True
        return real.startswith(self.writable if writing else self.readable)

    def _refuse(self, event: str, args: tuple, caller: str) -> None:
        detail = f"{event}{args[:2]!r}" if event != "exec" else event
        message = f"refused {detail} from {caller or 'candidate code'}: components may not reach outside the contract"
        self.violations.append(message)
        raise GuardViolation(message)
