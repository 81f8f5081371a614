"""The shape of ``sbkube/``, read from its source: layers, doors and private names.

The import graph is built with ``ast`` from every module of the package, counting every
import statement wherever it sits (module level, inside functions, under
``TYPE_CHECKING``). Cycles are looked for among the imports that run (a cycle that only
a function-level import hides is still a cycle to a reader); an import made for the type
checker only may point back up, as a type annotation may; ``from pkg import Name``
through a lazy door counts as importing the submodule that defines ``Name``. The door
and private-name rules hold for every import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "sbkube"

#: Modules every layer may use for words and plumbing; they import only each other.
GROUND_FLOOR = {
    "sbkube",
    "sbkube._lazy",
    "sbkube.errors",
    "sbkube.interrupts",
    "sbkube.manifests",
    "sbkube.model",
}
GROUND_FLOOR |= {"sbkube.redaction", "sbkube.yamlio"}

#: Cycles known when this test was written, each to be removed by the change that breaks
#: it (the CLI ``state`` group becoming a package, issue 9). A listed cycle that no longer
#: exists fails the test too, so the list cannot outlive its reason.
KNOWN_CYCLES: set[frozenset[str]] = set()

#: What ``sbkube.state`` exports: the store API (README "Python API") and nothing else.
STATE_DOOR = {
    "DeploymentDatabase",
    "DeploymentRepository",
    "DeploymentTracker",
    "DeploymentHandle",
    "AppHandle",
    "DeploymentRecord",
    "AppDeploymentRecord",
    "ResourceRecord",
    "UnsettledApp",
    "HelmReleaseRecord",
    "DeploymentSummary",
    "AppHistoryEntry",
    "LockRecord",
    "ResourceInput",
    "list_deployments",
    "DeployLocks",
    "LockHandle",
    "describe_holder",
    "pid_alive",
    "stale_reason",
    "PrunePlan",
    "PruneCandidate",
    "plan_prune",
    "apply_prune",
    "ImportResult",
    "export_deployments",
    "import_deployments",
    "check_lines",
    "dump_line",
}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module imported (a submodule when `from pkg import submodule`)
    names: tuple[str, ...]  # names taken from it by `from ... import`; () for `import x`
    line: int
    typing_only: bool = False  # under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        what = f"from {self.target} import {', '.join(self.names)}" if self.names else self.target
        return f"{self.importer}:{self.line}: {what}"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        name, is_package = _module_name(path)
        found[name] = (path, is_package)
    return found


def _typing_only_nodes(tree: ast.AST) -> set[ast.AST]:
    """The statements inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                inside.update(ast.walk(stmt))
    return inside


@cache
def imports() -> tuple[Import, ...]:
    mods = modules()
    found: list[Import] = []
    for name, (path, is_package) in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = _typing_only_nodes(tree)
        for node in ast.walk(tree):
            hint = node in typing_only
            if isinstance(node, ast.Import):
                found += [
                    Import(name, a.name, (), node.lineno, hint)
                    for a in node.names
                    if a.name.split(".")[0] == "sbkube"
                ]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                if target.split(".")[0] != "sbkube":
                    continue
                plain = tuple(a.name for a in node.names if f"{target}.{a.name}" not in mods)
                subs = [a.name for a in node.names if f"{target}.{a.name}" in mods]
                if plain:
                    found.append(Import(name, target, plain, node.lineno, hint))
                found += [Import(name, f"{target}.{s}", (), node.lineno, hint) for s in subs]
    return tuple(found)


def lazy_providers() -> dict[tuple[str, str], str]:
    """(package, name) -> the submodule a lazy ``__init__`` imports ``name`` from on first
    use, read from the imports it makes for the type checker (``sbkube._lazy``)."""
    return {
        (imp.importer, name): imp.target
        for imp in imports()
        if imp.typing_only
        and modules()[imp.importer][1]
        and imp.target.startswith(imp.importer + ".")
        for name in imp.names
    }


def graph() -> dict[str, set[str]]:
    """Which module imports which, at run time: ``from pkg import Name`` through a lazy
    door also imports the submodule that defines ``Name``."""
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    providers = lazy_providers()
    for imp in imports():
        if imp.typing_only:
            continue
        targets = {imp.target} | {
            providers[(imp.target, n)] for n in imp.names if (imp.target, n) in providers
        }
        edges[imp.importer] |= {t for t in targets if t in edges and t != imp.importer}
    return edges


def cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """Every set of modules that import each other round a circle (strongly connected)."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {name: reach(name) for name in edges}
    return {
        frozenset({name} | {o for o in reachable[name] if name in reachable[o]})
        for name in edges
        if name in reachable[name]
    }


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_graph_is_read_from_the_source() -> None:
    # Guards the helpers above: an empty or mis-resolved graph would pass everything below.
    edges = graph()
    assert "sbkube.state.repository" in edges["sbkube.state.tracker"]
    assert "sbkube.state" in edges["sbkube.engine.deployer"]
    assert "sbkube.state.database" not in edges["sbkube.state"]  # TYPE_CHECKING only
    assert "sbkube.state.tracker" in edges["sbkube.engine.deployer"]  # through the door
    assert any(i.typing_only and i.target == "sbkube.state.database" for i in imports())
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}


def test_no_import_cycle() -> None:
    found = cycles(graph())
    assert found - KNOWN_CYCLES == set(), "import cycles in sbkube/"
    assert KNOWN_CYCLES - found == set(), "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_the_state_store_has_one_door() -> None:
    """Outside ``sbkube/state/`` the store is reached through ``sbkube.state`` only."""
    reaching_in = [
        str(imp)
        for imp in imports()
        if imp.target.startswith("sbkube.state.")
        and not (imp.importer == "sbkube.state" or imp.importer.startswith("sbkube.state."))
    ]
    assert reaching_in == []


def test_no_private_name_crosses_a_module() -> None:
    """No ``from x import _name``; a private module is imported only inside its package."""
    leaks = []
    for imp in imports():
        leaks += [f"{imp}" for n in imp.names if private(n)]
        for i, part in enumerate(imp.target.split(".")):
            owner = ".".join(imp.target.split(".")[:i])
            if private(part) and not (imp.importer + ".").startswith(owner + "."):
                leaks.append(str(imp))
    assert leaks == []


def test_the_ground_floor_imports_nothing_above_it() -> None:
    climbing = [
        str(imp)
        for imp in imports()
        if imp.importer in GROUND_FLOOR and imp.target not in GROUND_FLOOR
    ]
    assert climbing == []


def test_state_exports_exactly_the_store_api() -> None:
    import sbkube.state

    assert set(sbkube.state.__all__) == STATE_DOOR
    assert STATE_DOOR <= set(dir(sbkube.state))
    for name in STATE_DOOR:
        assert getattr(sbkube.state, name) is not None
    with pytest.raises(AttributeError, match="DeploymentStatus"):
        _ = sbkube.state.DeploymentStatus  # words live in sbkube.model


def test_state_list_path_imports_no_orm() -> None:
    """``state list`` reads through the door without paying for ``sqlalchemy.orm``."""
    code = (
        "import sys, sbkube.state as s; s.list_deployments; s.DeploymentDatabase; "
        "print(sorted(m for m in sys.modules if m == 'sqlalchemy.orm' "
        "or m == 'sbkube.state.schema'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE_ROOT.parent,
    )
    assert out.stdout.strip() == "[]"
