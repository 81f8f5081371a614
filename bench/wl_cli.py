"""W4: start-up of the CLI as a whole process (wall time and peak RSS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from data import migrated_sqlite
from harness import Result


def _sbkube_argv() -> list[str]:
    # The console script next to this interpreter; not a PATH lookup, which may hit a
    # pyenv/asdf shim that adds its own (shell) start-up to every measurement.
    script = Path(sys.executable).with_name("sbkube")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from sbkube.cli import main; main(sys.argv[1:])"]


# Linux starts a child's max-RSS at the RSS of the image it was forked from (exec keeps
# the high-water mark), so children of this big benchmark process would all report its
# size. A small launcher forks the command instead and reports the children's max RSS.
_RSS_LAUNCHER = """
import os, resource, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, 0)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(argv: list[str], env: dict[str, str]) -> float:
    """Wall time (ms) of one process."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    return wall


def peak_rss(argv: list[str], env: dict[str, str]) -> float:
    """Peak RSS (MB) of one process, via the launcher's RUSAGE_CHILDREN."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RSS_LAUNCHER, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out[1] != "0":
        raise RuntimeError(f"{' '.join(argv)} exited {out[1]}")
    return int(out[0]) / 1024.0  # KiB on Linux


def import_costs(env: dict[str, str], top: int = 14) -> list[tuple[str, float, int]]:
    """Self import time of ``state list`` (``python -X importtime``) summed per package.

    Packages are grouped on their first two name parts (``sqlalchemy.orm``,
    ``sbkube.state``); returns (group, ms, modules), costliest first.
    """
    code = "from sbkube.cli import main; main(['state', 'list'])"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    groups: dict[str, list[float]] = {}
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if m:
            group = ".".join(m.group(2).split(".")[:2])
            groups.setdefault(group, []).append(int(m.group(1)) / 1000)
    ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    return [(name, sum(v), len(v)) for name, v in ranked[:top]]


def w4_cli_start(ctx: Any) -> list[Result]:
    store = migrated_sqlite(ctx.tmp / "w4-empty.db")
    env = dict(os.environ, SBKUBE_STATE_URL=str(store), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    sbkube = _sbkube_argv()
    commands = {
        "state list": [*sbkube, "state", "list"],
        "import sqlalchemy": [sys.executable, "-c", "import sqlalchemy"],
        "--help": [*sbkube, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    inner = 3 if ctx.quick else 4
    wall: dict[str, list[float]] = {k: [] for k in commands}
    rss: dict[str, list[float]] = {k: [] for k in commands}
    for argv in commands.values():  # warm the page cache and .pyc files
        run_once(argv, env)
    for rnd in range(ctx.rounds):
        names = list(commands) if rnd % 2 == 0 else list(commands)[::-1]
        for _ in range(inner):
            for name in names:
                wall[name].append(run_once(commands[name], env))
            for name in names:
                rss[name].append(peak_rss(commands[name], env))
    results = [
        Result(
            "W4 `sbkube state list` vs `python -c 'import sqlalchemy'`",
            "ms",
            wall["state list"],
            wall["import sqlalchemy"],
            target="ratio <= 1.5",
            check="ratio",
            limit=1.5,
        ),
        Result(
            "W4 `sbkube --help` vs `python -c pass`", "ms", wall["--help"], wall["python -c pass"]
        ),
        Result(
            "W4 peak RSS state list vs import sqlalchemy",
            "MB",
            rss["state list"],
            rss["import sqlalchemy"],
        ),
        Result("W4 peak RSS --help vs python -c pass", "MB", rss["--help"], rss["python -c pass"]),
    ]
    costs = import_costs(env)
    ctx.extra["w4_import_costs_ms"] = costs
    if not results[0].passed:
        lines = [f"    {name:<32} {ms:6.1f} ms in {n} module(s)" for name, ms, n in costs]
        ctx.notes.append(
            "W4 target missed; import time of `state list` by package (python -X importtime, "
            "self time summed; inflated by the tracing):\n" + "\n".join(lines)
        )
    return results
