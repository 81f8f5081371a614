"""The shape of ``sbkube/``: its floors, doors and private names.

The import graph is checked by import-linter against the contracts in ``pyproject.toml``
(``[tool.importlinter]``: the floors as layers, the store's one door, the ORM inside
``sbkube/state/``, the API server's wing, no import circle, private modules). ``.ci/run``
runs ``lint-imports`` too; running it here makes a broken contract fail the suite that
every change runs. What an import graph cannot say is tested below: no private *name*
crosses a module, what ``sbkube.state`` exports, and that ``state list`` pays for no ORM.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = ROOT / "sbkube"

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
    "RekeyResult",
    "rekey_store",
    "export_deployments",
    "import_deployments",
    "check_lines",
    "dump_line",
    "import_legacy",
    "imported_from",
}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``sbkube`` package and ``pyproject.toml`` found in ``root``."""
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(root), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
    )


def test_the_import_contracts_hold() -> None:
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_the_contracts_catch_a_floor_climbed(tmp_path: Path) -> None:
    # Guards the configuration: a contract that names no module (or a wrong one) would pass
    # everything. A copy of the package where the store imports the engine must fail.
    copy = tmp_path / "sbkube"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    views = copy / "state" / "views.py"
    views.write_text(views.read_text() + "\nfrom sbkube.engine import runner  # noqa\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0
    assert "sbkube.state.views -> sbkube.engine.runner" in out.stdout


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    path = PACKAGE_ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_private_name_crosses_a_module() -> None:
    """No ``from x import _name`` (import-linter sees modules, not the names taken from them;
    private modules are its ``private_modules`` contract). Imports for the type checker
    count too."""
    leaks = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        package = list(path.relative_to(PACKAGE_ROOT.parent).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "sbkube":
                continue
            leaks += [
                f"{path.relative_to(ROOT)}:{node.lineno}: from {target} import {a.name}"
                for a in node.names
                if _private(a.name) and not _is_module(f"{target}.{a.name}")
            ]
    assert leaks == []


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
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


def test_template_path_imports_no_apply_or_http_client(tmp_path: Path) -> None:
    """``sbkube template`` renders and prints: it pays neither for the apply path (hooks
    are planned, not run) nor for urllib's HTTP client (nothing is downloaded)."""
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  a: b\n"
    )
    (tmp_path / "config.yaml").write_text(
        "namespace: demo\napps:\n  cms:\n    type: yaml\n    manifests: [cm.yaml]\n"
    )
    code = (
        "import sys\nfrom sbkube.cli.root import cli\n"
        "try:\n    cli.main(['template', '--app-dir', sys.argv[1]], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = ('sbkube.engine.apply', 'sbkube.engine.health', 'sbkube.engine.steps',\n"
        "             'http.client', 'urllib.request')\n"
        "    print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "name: one" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "[]"
