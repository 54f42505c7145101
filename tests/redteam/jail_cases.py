"""Hostile components that only the kernel jail stops: C-level file access, shells, TCP, signals.

Each case is a complete `tta` module (the shipped one with `predict` replaced) whose only fault is
the hostile construct. The audit hook does not see these (torch's C++ opens files itself; a
torch helper starts the shell), so tests/test_redteam_jail.py runs them with the static check
switched off: what they meet is the jail. Placeholders in capitals are filled in by the test:
SECRET (the dataset cache's labels), DATAFILE (a --data file in the repository root), OUTSIDE (a
folder outside the worker's), FOREIGN (a model another evaluation's worker wrote), PORT (a loopback
TCP server), PARENT (the evaluator's pid), MARKER (a unique sleep time), PYTHON.

`reason` must appear in the verdict's message; a loud case turns the jail's refusal into an
exception in the contract tests, a quiet one ignores it and must be scored as the benign component
it then is.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class JailCase:
    name: str
    body: str  # the body of predict(model, inputs, hp), indented four spaces
    stage: str
    status: str
    reason: str  # a regular expression the verdict's message matches ("" for a scored case)


HEAD = "\n\ndef predict(model, inputs, hp):\n"
# A shell through a torch helper: cpp_extension runs `ninja` from PATH without pipes (so the audit
# hook sees only a process started by torch, which it trusts); the candidate's `ninja` is a script
# in its own folder. Its stderr goes to err.txt, which the candidate raises on failure. (Found by
# trying: collect_env.run and the like open pipe file descriptors, which the hook refuses.)
SHELL_HELPER = """

def shell(command):
    with open('ninja', 'w') as f:
        f.write('#!/bin/sh\\nexec 2> err.txt\\n' + command + '\\n')
    torch.serialization.os.chmod('ninja', 0o755)
    torch.serialization.os.environ['PATH'] = torch.serialization.os.getcwd() + ':/usr/bin:/bin'
    torch.ops.import_module('torch.utils.cpp_extension')  # imported by torch, so the audit hook allows it
    try:
        torch.utils.cpp_extension._run_ninja_build('.', True, '')
    except RuntimeError as e:
        raise RuntimeError(open('err.txt').read()) from e
"""


def source(case: JailCase) -> str:
    helper = SHELL_HELPER if "shell(" in case.body else ""
    return helper + HEAD + case.body + "    return model(inputs)\n"


DENIED = r"[Pp]ermission denied|Errno 13|Operation not permitted"

JAIL_CASES = [
    JailCase("reads the dataset cache with aten.from_file", "    torch.ops.aten.from_file.default('SECRET', False, 64, dtype=torch.uint8)\n",
             "contracts", "rejected", DENIED + "|No such file"),
    JailCase("reads the --data file with aten.from_file", "    torch.ops.aten.from_file.default('DATAFILE', False, 64, dtype=torch.uint8)\n",
             "contracts", "rejected", DENIED + "|No such file"),
    JailCase("writes outside with torch.serialization.save", "    torch.serialization.save(inputs[:1], 'OUTSIDE/stolen.pt')\n",
             "contracts", "rejected", DENIED + "|cannot be opened|failed to open|Parent directory"),
    JailCase("writes outside with torch.jit.save",
             "    torch.jit.save(torch.jit.script(torch.nn.Identity()), 'OUTSIDE/model.pt')\n",
             "contracts", "rejected", DENIED + "|cannot be opened|failed to open|open file failed"),
    JailCase("loads a model another evaluation wrote", "    torch.jit.load('FOREIGN')\n",
             "contracts", "rejected", DENIED + "|cannot be opened|failed to open|open file failed|No such file"),
    JailCase("hard-links the dataset cache into its folder",
             "    torch.serialization.os.link('SECRET', 'labels.npz')\n", "contracts", "rejected",
             r"cross-device link|Errno 18|" + DENIED),
    JailCase("writes outside from a shell started by a torch helper", "    shell('echo stolen > OUTSIDE/shell.txt')\n",
             "contracts", "rejected", DENIED + "|cannot create"),
    JailCase("reads the labels with a fresh interpreter",
             "    shell('PYTHON -c \"print(open(\\'SECRET\\', \\'rb\\').read(9))\"')\n", "contracts", "rejected", DENIED),
    JailCase("connects to a loopback TCP server",
             "    shell('PYTHON -c \"import socket; socket.create_connection((\\'127.0.0.1\\', PORT), 5)\"')\n",
             "contracts", "rejected", DENIED + "|Network is unreachable"),
    JailCase("signals the evaluator", "    shell('kill -USR1 PARENT')\n", "contracts", "rejected", "No such process|" + DENIED),
    JailCase("leaves setsid processes behind (quietly)",
             "    shell('setsid sleep MARKER > /dev/null 2>&1 < /dev/null &')\n", "timed", "passed", ""),
]
