"""Bad input corpus: every case is one ``error:`` line naming file and field, exit 2, no write.

The cases live in ``tests/fixtures/bad/cases.yaml`` (see its header for the format): broken
config files, files they name that are missing or wrong, charts helm cannot render, a 50 MB
values file (generated here, never committed), unknown deployment ids, bad options. Each
runs the real CLI in a subprocess with its own store path; the store must not be created
(or, for ``state`` commands, keep its one seeded deployment). ``--debug`` shows tracebacks.

The subprocesses are started all together (a few at a time) the first time a case asks
for its result, so the corpus costs the time of its slowest batch, not of its sum.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_helpers import (
    BAD_FIXTURES,
    REPO_ROOT,
    CliJob,
    CliResult,
    assert_one_line_error,
    cli_env,
    integrity_check,
    run_cli,
    run_cli_many,
    seed_store,
    sqlite_count,
)

from sbkube.cluster.memory import BUILTIN_NAMESPACES

# ~10 s for the whole corpus, paid by the first case that runs.
pytestmark = pytest.mark.slow

CASES: list[dict[str, Any]] = yaml.safe_load((BAD_FIXTURES / "cases.yaml").read_text())
DEFAULT_ARGS = ["deploy", "--app-dir", "app", "--memory-cluster", "cluster.json"]
DEBUG_CASES = ("malformed-yaml", "state-show-unknown-id")
# Run in fresh interpreters too: one per command, to check the warm runs change nothing.
COLD_CASES = ("unknown-app-key", "template-malformed-yaml", "state-list-since-word")
PARALLEL = 3


def _helm_path() -> str | None:
    import os

    for candidate in (
        os.environ.get("SBKUBE_HELM"),
        shutil.which("helm"),
        str(REPO_ROOT / ".ci" / "bin" / "helm"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _generate(path: Path, megabytes: int) -> None:
    """A syntactically valid values file of ``megabytes`` MB (many long string values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = "v" * 1000
    with path.open("w") as out:
        written, i = 0, 0
        while written < megabytes * 1024 * 1024:
            text = f"key{i}: {line}\n"
            out.write(text)
            written += len(text)
            i += 1


def _nested(path: Path, depth: int) -> None:
    """A values file whose mappings nest ``depth`` levels deep (block style, one key each)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "x\n")


def _digits(text: str) -> str:
    """``{digits:N}`` in a case's file is an integer of N digits."""
    return re.sub(r"\{digits:(\d+)\}", lambda m: "1" + "0" * (int(m.group(1)) - 1), text)


def _arg(text: str) -> str:
    """``{key-levels:N}`` in a case's argument is a ``--set`` pair with an N-level key."""
    m = re.fullmatch(r"\{key-levels:(\d+)\}", text)
    return ".".join(["a"] * int(m.group(1))) + "=1" if m else text


@dataclass
class Corpus:
    """Runs every case once on first use (all together, warm), then serves the results.

    Cases run through ``cli_forkserver.py``; the ``COLD_CASES`` and the ``--debug`` runs
    also run in fresh interpreters, exactly as a user's shell would start them.
    """

    root: Path
    results: dict[str, CliResult] = field(default_factory=dict)
    cold_results: dict[str, CliResult] = field(default_factory=dict)
    debug_results: dict[str, CliResult] = field(default_factory=dict)
    seeded_id: str = ""
    _done: bool = False

    def case_dir(self, case_id: str, kind: str = "warm") -> Path:
        return self.root / kind / case_id

    def _job(self, case: dict[str, Any], template: Path, kind: str) -> CliJob:
        work = self.case_dir(case["id"], kind)
        work.mkdir(parents=True)
        shutil.copytree(BAD_FIXTURES / case.get("dir", "valid-app"), work / "app")
        for relative, megabytes in (case.get("generate") or {}).items():
            _generate(work / "app" / relative, int(megabytes))
        for relative, depth in (case.get("nested") or {}).items():
            _nested(work / "app" / relative, int(depth))
        for relative, text in (case.get("files") or {}).items():
            (work / "app" / relative).parent.mkdir(parents=True, exist_ok=True)
            (work / "app" / relative).write_text(_digits(text))
        if case.get("store") == "seeded":
            (work / "state").mkdir()
            shutil.copy(template, work / "state" / "state.db")
        args = [_arg(a.replace("{seeded}", self.seeded_id)) for a in case.get("args", DEFAULT_ARGS)]
        if kind == "debug":
            args = ["--debug", *args]
        home = work / "home"
        home.mkdir()
        helm = _helm_path()
        extra = {"SBKUBE_HELM": helm} if helm else {}
        env = cli_env(home, str(work / "state" / "state.db"), extra)
        return CliJob(case["id"], args, env, work)

    def ensure(self) -> None:
        if self._done:
            return
        template = self.root / "seeded.db"
        seeded = seed_store(str(template), 1, resources=2, cluster="memory")
        self.seeded_id = seeded[0].deployment_id
        warm = [self._job(c, template, "warm") for c in CASES]
        cold = [self._job(c, template, "cold") for c in CASES if c["id"] in COLD_CASES]
        debug = [self._job(c, template, "debug") for c in CASES if c["id"] in DEBUG_CASES]
        with ThreadPoolExecutor(2) as pool:
            fresh = {
                (kind, job.id): pool.submit(run_cli, job.args, env=job.env, cwd=job.cwd)
                for kind, jobs in (("cold", cold), ("debug", debug))
                for job in jobs
            }
            self.results = run_cli_many(warm, parallel=PARALLEL)
        for (kind, case_id), future in fresh.items():
            target = self.cold_results if kind == "cold" else self.debug_results
            target[case_id] = future.result()
        self._done = True


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    yield Corpus(tmp_path_factory.mktemp("bad-input"))


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.helm] if case.get("helm") else []
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def test_corpus_is_big_enough() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 120  # issue 13
    for case in CASES:
        assert case.get("expect"), f"{case['id']}: no expected fragments"
        if "dir" in case:
            assert (BAD_FIXTURES / case["dir"]).is_dir(), case["dir"]


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: dict[str, Any], corpus: Corpus, request: pytest.FixtureRequest) -> None:
    if case.get("helm"):
        request.getfixturevalue("helm_binary")  # skips locally, fails in CI, without helm
    corpus.ensure()
    result = corpus.results[case["id"]]
    assert_one_line_error(result, *case["expect"], exit_code=int(case.get("exit", 2)))
    assert result.stdout == "", str(result)

    work = corpus.case_dir(case["id"])
    state = work / "state" / "state.db"
    if case.get("store") == "seeded":
        assert sqlite_count(state) == 1, "the store changed"
        assert sqlite_count(state, "app_deployments") == 2
        assert integrity_check(state) == "ok"
    elif state.exists():
        # `sbkube deploy` opens (creates and migrates) the store before it reads the
        # config; nothing may be recorded in it, though.
        assert sqlite_count(state) == 0, "bad input was recorded"
        assert sqlite_count(state, "app_deployments") == 0
        assert integrity_check(state) == "ok"
    cluster = work / "cluster.json"
    if case.get("cluster") == "seen" and cluster.exists():
        # The identity the command read is kept (the built-in namespaces), and nothing else.
        kept = json.loads(cluster.read_text(encoding="utf-8"))["objects"]
        assert {o["kind"] for o in kept} == {"Namespace"}, "the cluster was changed"
        assert {o["metadata"]["name"] for o in kept} <= BUILTIN_NAMESPACES
    else:
        assert not cluster.exists(), "the cluster was touched"


@pytest.mark.parametrize("case_id", COLD_CASES)
def test_fresh_interpreter_agrees(case_id: str, corpus: Corpus) -> None:
    corpus.ensure()
    warm, cold = corpus.results[case_id], corpus.cold_results[case_id]
    assert (cold.returncode, cold.stdout) == (warm.returncode, warm.stdout)
    # Paths differ (warm/ vs cold/ directories) only outside the cwd-relative parts.
    assert cold.stderr == warm.stderr, f"{cold}\n{warm}"


@pytest.mark.parametrize("case_id", DEBUG_CASES)
def test_debug_shows_traceback(case_id: str, corpus: Corpus) -> None:
    corpus.ensure()
    result = corpus.debug_results[case_id]
    assert result.returncode != 0, str(result)
    assert "Traceback (most recent call last)" in result.stderr, str(result)
    case = next(c for c in CASES if c["id"] == case_id)
    assert case["expect"][-1] in result.stderr
