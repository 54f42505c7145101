"""The kernel jail itself (evaluator/sandbox/jail.py), tried from plain Python processes.

These start no torch, so they take a second each. The red-team cases in tests/redteam/jail_cases.py
try the same walls from inside a real worker, through torch's C++ and its helpers.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.sandbox import jail, sandboxed_worker
from evaluator.sandbox.sandboxed_worker import SandboxedWorker, WorkerFailure, WorkerLimits, check_jail, folder_usage
from tests.process_support import processes_with

needs_landlock = pytest.mark.skipif(jail.landlock_abi() < 1, reason="this kernel has no Landlock (the evaluator refuses here)")
needs_pid_namespace = pytest.mark.skipif(jail.namespaces() is None, reason="this system allows no PID namespace")


def run_jailed(tmp_path: Path, code: str, namespaces: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter under the worker's policy (and namespaces), as a worker starts."""
    workdir, packages = tmp_path / "work", tmp_path / "packages"
    workdir.mkdir(exist_ok=True)
    if not packages.exists():
        jail.link_packages(packages)
    policy = jail.worker_policy(workdir, packages, cuda=False).model_dump_json()
    prelude = f"from evaluator.sandbox import jail\njail.restrict_self(jail.JailPolicy.model_validate_json({policy!r}))\n"
    prefix = jail.namespaces().prefix if namespaces else []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join([str(packages), *jail.library_paths()])}
    return subprocess.run(
        [*prefix, sys.executable, "-P", "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env,
    )


ATTEMPTS = """
import json, os, sys
def attempt(f):
    try:
        f()
        return "allowed"
    except OSError as e:
        return e.strerror
results = {
    "read the secret": attempt(lambda: open(SECRET).read()),
    "write outside": attempt(lambda: open(OUTSIDE + "/x", "w").write("x")),
    "hard link the secret in": attempt(lambda: os.link(SECRET, "stolen")),
    "truncate the secret": attempt(lambda: os.truncate(SECRET, 0)),
    "list the repository root": attempt(lambda: os.listdir(REPO)),
    "read a file of the repository root": attempt(lambda: open(REPO + "/README.md").read()),
    "read the project's package": attempt(lambda: open(PACKAGE + "/data.py").read()),
    "write its own folder": attempt(lambda: open("mine", "w").write("x")),
    "rename within its folder": attempt(lambda: (os.mkdir("d"), os.replace("mine", "d/mine"))),
    "import the standard library": attempt(lambda: __import__("json")),
    "run a compiler": attempt(lambda: os.system("g++ --version > /dev/null") == 0 or 1 / 0),
}
print(json.dumps(results))
"""


@needs_landlock
@needs_pid_namespace
def test_a_jailed_process_reads_and_writes_only_what_the_policy_allows(tmp_path):
    secret_dir, outside = tmp_path / "cache", tmp_path / "outside"
    secret_dir.mkdir()
    outside.mkdir()
    secret = secret_dir / "cifar10_uint8.npz"
    secret.write_text("test labels")
    import evaluator

    package = Path(evaluator.__file__).parent
    code = ATTEMPTS.replace("SECRET", repr(str(secret))).replace("OUTSIDE", repr(str(outside)))
    code = code.replace("REPO", repr(str(package.parent))).replace("PACKAGE", repr(str(package)))
    done = run_jailed(tmp_path, code)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    allowed = {"read the project's package", "write its own folder", "rename within its folder",
               "import the standard library", "run a compiler"}
    for name, outcome in results.items():
        assert (outcome == "allowed") == (name in allowed), (name, outcome)
    assert secret.read_text() == "test labels" and not list(outside.iterdir())
    assert not (tmp_path / "work" / "stolen").exists()


@needs_landlock
def test_tcp_is_refused_by_landlock_even_with_a_network(tmp_path):
    if jail.landlock_abi() < 4:
        pytest.skip("Landlock ABI < 4 has no TCP rights; the empty network namespace is the wall there")
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = f"""
        import socket
        for call in (lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5), lambda: socket.socket().bind(("127.0.0.1", 0))):
            try:
                call()
                print("allowed")
            except OSError as e:
                print(e.strerror)
        """
        done = run_jailed(tmp_path, code, namespaces=False)  # the parent's network: only Landlock stands between
        with pytest.raises(TimeoutError):
            server.accept()
    assert done.stdout.split("\n")[:2] == ["Permission denied", "Permission denied"], done.stderr


@needs_landlock
def test_signals_may_not_leave_the_jail(tmp_path):
    if jail.landlock_abi() < 6:
        pytest.skip("Landlock ABI < 6 cannot scope signals; the PID namespace hides the parent there")
    done = run_jailed(tmp_path, f"import os\ntry:\n    os.kill({os.getpid()}, 0)\n    print('allowed')\nexcept OSError as e:\n    print(e.strerror)\n",
                      namespaces=False)
    assert done.stdout.strip() == "Operation not permitted", done.stderr


@needs_landlock
@needs_pid_namespace
def test_the_worker_sees_no_process_outside_and_not_the_parents_environment(tmp_path, monkeypatch):
    code = f"""
    import os
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    print(len(pids), os.path.exists("/proc/{os.getpid()}/environ") and os.getpid() > 5)
    """
    done = run_jailed(tmp_path, code)
    count, parent_visible = done.stdout.split()
    assert int(count) <= 3 and parent_visible == "False", done.stderr


@needs_landlock
@needs_pid_namespace
def test_unix_sockets_are_refused_so_no_pathname_socket_is_reachable(tmp_path):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "daemon.sock"))  # as a docker or database socket would be
        server.listen()
        code = f"""
        import socket
        try:
            socket.socket(socket.AF_UNIX).connect({str(tmp_path / "daemon.sock")!r})
            print("allowed")
        except OSError as e:
            print(e.strerror)
        a, b = socket.socketpair()  # what multiprocessing needs stays
        print("pair")
        """
        done = run_jailed(tmp_path, code)
    assert done.stdout.split() == ["Permission", "denied", "pair"], done.stderr


@needs_landlock
@needs_pid_namespace
def test_setsid_grandchildren_die_with_the_worker(tmp_path):
    marker = f"{3000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    code = f"""
    import subprocess, time
    subprocess.Popen(["setsid", "sh", "-c", "sleep {marker}; true"], start_new_session=True)
    subprocess.Popen(["sh", "-c", "(setsid sleep {marker} &) ; true"])
    print("started", flush=True)
    time.sleep(300)
    """
    workdir, packages = tmp_path / "work", tmp_path / "packages"
    workdir.mkdir()
    jail.link_packages(packages)
    policy = jail.worker_policy(workdir, packages, cuda=False).model_dump_json()
    prelude = f"from evaluator.sandbox import jail\njail.restrict_self(jail.JailPolicy.model_validate_json({policy!r}))\n"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(packages), *jail.library_paths()])}
    worker = subprocess.Popen([*jail.namespaces().prefix, sys.executable, "-P", "-c", prelude + textwrap.dedent(code)],
                              stdout=subprocess.PIPE, text=True, cwd=workdir, env=env, start_new_session=True)
    try:
        assert worker.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(processes_with(marker)) >= 2  # both left the worker's process group and session
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # what SandboxedWorker.kill does
        worker.wait()
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_with(marker)


@needs_landlock
@needs_pid_namespace
def test_a_worker_that_leaves_its_group_and_parent_death_signal_is_still_killed(tmp_path):
    marker = f"{5000 + os.getpid() % 1000}.{time.time_ns() % 10**6}"
    code = f"""
    import ctypes, os, subprocess, time
    os.setsid()  # out of the process group the parent kills
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0: unshare's death no longer kills it
    subprocess.Popen(["sleep", "{marker}"])
    print("started", flush=True)
    time.sleep(300)
    """
    workdir, packages = tmp_path / "work", tmp_path / "packages"
    workdir.mkdir()
    jail.link_packages(packages)
    policy = jail.worker_policy(workdir, packages, cuda=False).model_dump_json()
    prelude = f"from evaluator.sandbox import jail\njail.restrict_self(jail.JailPolicy.model_validate_json({policy!r}))\n"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(packages), *jail.library_paths()])}
    worker = SandboxedWorker(WorkerLimits(), "cpu")
    worker.pid_namespace = True
    worker.process = subprocess.Popen([*jail.namespaces().prefix, sys.executable, "-P", "-c", prelude + textwrap.dedent(code)],
                                      stdout=subprocess.PIPE, text=True, cwd=workdir, env=env, start_new_session=True)
    try:
        assert worker.process.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(marker)
    finally:
        worker.kill()
        worker._tmp.cleanup()
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_with(marker)


def test_no_landlock_is_a_refusal_naming_the_feature_and_the_opt_out(monkeypatch):
    monkeypatch.setattr(jail, "landlock_abi", lambda: 0)
    with pytest.raises(jail.JailUnavailable, match=r"Landlock \(Linux >= 5.13.*--unjailed-trusted-code"):
        check_jail(WorkerLimits())
    check_jail(WorkerLimits(unjailed_trusted_code=True))  # the explicit opt-out
    with pytest.raises(jail.JailUnavailable):
        SandboxedWorker(WorkerLimits(), "cpu").__enter__()


def test_no_pid_namespace_is_a_refusal_too(monkeypatch):
    monkeypatch.setattr(jail, "landlock_abi", lambda: 7)
    monkeypatch.setattr(jail, "namespaces", lambda network=True: None)
    with pytest.raises(jail.JailUnavailable, match="PID and IPC namespace.*--unjailed-trusted-code"):
        check_jail(WorkerLimits())


def test_evolve_eval_refuses_without_a_jail(monkeypatch, tmp_path):
    from evolve.cli.app import app

    monkeypatch.setattr(jail, "landlock_abi", lambda: 0)
    component = Path(__file__).parents[1] / "components" / "baseline" / "tta.py"
    result = CliRunner().invoke(app, ["eval", str(component), "--component", "tta", "--device", "cpu", "--data", "synthetic"])
    assert result.exit_code == 2 and "Landlock" in result.output and "--unjailed-trusted-code" in result.output


def test_a_dataset_cache_the_worker_could_read_is_refused(tmp_path):
    packages = tmp_path / "packages"
    jail.link_packages(packages)
    policy = jail.worker_policy(tmp_path / "work", packages, cuda=False)
    jail.ensure_unreadable(policy, [tmp_path / "cache"])
    with pytest.raises(jail.JailUnavailable, match="EVOLVE_CACHE"):
        jail.ensure_unreadable(policy, [Path(sys.prefix) / "evolve-cache"])



@needs_landlock
def test_a_data_file_or_cache_the_worker_could_read_is_refused_up_front(monkeypatch):
    import evaluator

    inside_package = Path(evaluator.__file__).parent / "labels.npz"
    with pytest.raises(jail.JailUnavailable, match="holds test labels"):
        check_jail(WorkerLimits(), str(inside_package))
    check_jail(WorkerLimits(), str(inside_package.parents[1] / "labels.npz"))  # the repository root is not readable
    monkeypatch.setenv("EVOLVE_CACHE", str(Path(sys.prefix) / "evolve-cache"))
    with pytest.raises(jail.JailUnavailable, match="EVOLVE_CACHE"):
        check_jail(WorkerLimits(), "synthetic")


def test_the_worker_environment_keeps_every_cache_in_its_folder(tmp_path):
    env = sandboxed_worker.scrubbed_environment(tmp_path, packages=tmp_path / "packages")
    for key in ("HOME", "TMPDIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "TRITON_HOME"):
        assert env[key].startswith(str(tmp_path)), key
    assert os.getcwd() not in env["PYTHONPATH"].split(os.pathsep)  # the repository root stays unreadable


def test_folder_usage_counts_bytes_and_entries(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big").write_bytes(b"x" * (1 << 20))
    size, count = folder_usage(tmp_path, 100)
    assert size >= 1 << 20 and count == 2


@needs_landlock
@needs_pid_namespace
def test_a_worker_whose_folder_floods_is_killed_with_the_reason():
    limits = WorkerLimits(folder_bytes=1 << 20, setup_seconds=30)
    with SandboxedWorker(limits, "cpu") as worker:
        (worker.workdir / "flood.bin").write_bytes(bytes(6 << 20))  # 6 MB, over the folder's limit
        deadline = time.monotonic() + 10
        while worker.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(WorkerFailure, match="folder exceeded its limit"):
            worker.request({"type": "exit"}, "ready", 30)
