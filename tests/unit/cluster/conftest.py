"""Fixtures for the cluster package tests (the helm/kubectl binaries come from the root
conftest): the local test charts, recorded helm JSON output, and fake helm/kubectl executables."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from sbkube.cluster.helm import HelmClient
from sbkube.cluster.port import ChartRef

REPO_ROOT = Path(__file__).resolve().parents[3]
CHARTS = REPO_ROOT / "tests" / "fixtures" / "charts"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def helm_output() -> Callable[[str], str]:
    """Reads a recorded helm output from tests/unit/cluster/data/."""
    return lambda name: (DATA / name).read_text(encoding="utf-8")


@pytest.fixture
def helm(helm_binary: str) -> HelmClient:
    return HelmClient(binary=helm_binary)


@pytest.fixture
def charts() -> Path:
    return CHARTS


@pytest.fixture
def demo_chart() -> ChartRef:
    return ChartRef(str(CHARTS / "demo-redis"))


@pytest.fixture
def broken_chart() -> ChartRef:
    return ChartRef(str(CHARTS / "broken"))


# A fake CLI: logs its argv (and stdin) as one JSON line, then answers from a table of
# (argv prefix -> (exit code, stdout, stderr)). The longest matching prefix wins.
_FAKE_SCRIPT = """#!{python}
import json, sys
argv = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": argv, "stdin": stdin}}) + "\\n")
answers = json.load(open({answers!r}))
best = None
for prefix, answer in answers:
    if argv[: len(prefix)] == prefix and (best is None or len(prefix) > len(best[0])):
        best = (prefix, answer)
code, out, err = best[1] if best else (0, "", "")
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""

Answers = Mapping[tuple[str, ...], tuple[int, str, str]]


class FakeBinary:
    """A fake executable recording every call."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log = log

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


@pytest.fixture
def fake_binary(tmp_path: Path) -> Callable[[str, Answers], FakeBinary]:
    def make(name: str, answers: Answers) -> FakeBinary:
        directory = tmp_path / f"fake-{name}"
        directory.mkdir()
        log = directory / "calls.jsonl"
        answers_file = directory / "answers.json"
        answers_file.write_text(json.dumps([[list(k), list(v)] for k, v in answers.items()]))
        script = directory / name
        script.write_text(
            _FAKE_SCRIPT.format(python=sys.executable, log=str(log), answers=str(answers_file))
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return FakeBinary(script, log)

    return make
