"""Run many ``sbkube`` command lines fast: one warm interpreter that forks per command.

Run as a script (not collected). It imports the CLI and the modules every command loads
(click, pydantic, SQLAlchemy, the config loader, the engine) once, reads job lines (JSON:
``id``, ``args``, ``env``, ``cwd``, ``stdout``, ``stderr``) from stdin until EOF, then runs
them, up to ``argv[1]`` at a time, each in a forked child that becomes the CLI process:
its own working directory, environment, argv and stdio files, then ``sbkube.cli.main()``
and its exit code. One JSON line per finished job (``id``, ``returncode``) goes to stdout.

Forking saves the interpreter start and imports (most of a failing command's 0.7 s); the
server is single-threaded, so forking it is safe. ``test_reliability_bad_input.py``
cross-checks a sample of cases against fresh interpreters.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Any

# Imported once here so that every forked child starts warm.
import sbkube.cli
import sbkube.cli.deploy
import sbkube.cli.rollback
import sbkube.cli.state
import sbkube.config
import sbkube.engine.deployer


def _child(job: dict[str, Any]) -> None:
    """Become ``sbkube ARGS`` in the job's directory and environment; never returns."""
    code = 1
    try:
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.argv = ["sbkube", *job["args"]]
        try:
            sbkube.cli.main()
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            # What the interpreter does with an uncaught exception (e.g. under --debug).
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def main() -> None:
    parallel = int(sys.argv[1])
    jobs = [json.loads(line) for line in sys.stdin if line.strip()]
    running: dict[int, str] = {}
    pending = list(reversed(jobs))
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(job)
            running[pid] = job["id"]
        pid, status = os.wait()
        job_id = running.pop(pid)
        print(json.dumps({"id": job_id, "returncode": os.waitstatus_to_exitcode(status)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
