"""``sbkube.config.quick.helm_plan`` vouches only for what ``load_config`` accepts, and then
plans exactly the renders the full path (``prepare_apps``) would run.

Held to it on every config of the fixtures and examples, and on a few hundred random
variations of a config of Helm apps (names, types, charts, versions, values files, ``set``,
dependencies, release names, namespaces: valid and invalid ones alike).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sbkube.config import load_config, resolve_values
from sbkube.config.quick import HelmRender, helm_plan
from sbkube.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CHART = "apiVersion: v2\nname: {name}\nversion: {version}\n"


def full_plan(
    app_dir: Path, namespace: str | None = None, config_file: str | None = None
) -> list[HelmRender] | None:
    """What the full path plans for ``template`` (None when it refuses the config, or an
    app's values: ``prepare_apps`` merges them)."""
    try:
        return _full_plan(app_dir, namespace, config_file)
    except ConfigError:
        return None


def _full_plan(app_dir: Path, namespace: str | None, config_file: str | None) -> list[HelmRender]:
    loaded = load_config(app_dir, config_file, namespace=namespace)
    plan = []
    for name in loaded.order:
        app = loaded.app(name)
        assert app.type == "helm", name  # quick vouched: only Helm apps
        plan.append(
            HelmRender(
                name=name,
                namespace=loaded.app_namespace(name),
                chart=loaded.chart_ref(name),
                version=app.version,  # type: ignore[union-attr]
                release_name=loaded.release_name(name),
                values=resolve_values(loaded, name),
            )
        )
    return plan


def test_every_fixture_config_is_planned_as_the_full_path_plans_it() -> None:
    configs = sorted(
        p.parent
        for base in (ROOT / "tests" / "fixtures", ROOT / "examples")
        for p in base.rglob("config.yaml")
    )
    assert len(configs) >= 20
    vouched = 0
    for app_dir in configs:
        plan = helm_plan(app_dir)
        if plan is not None:
            vouched += 1
            assert plan == full_plan(app_dir), app_dir
    assert vouched >= 1


def test_a_named_config_file_is_planned_as_the_full_path_plans_it(tmp_path: Path) -> None:
    app_dir = Path(
        shutil.copytree(ROOT / "tests" / "fixtures" / "apps" / "quick-helm", tmp_path / "q")
    )
    (app_dir / "config.yaml").rename(app_dir / "other.yaml")
    plan = helm_plan(app_dir, "other.yaml")
    assert plan is not None and plan == full_plan(app_dir, config_file="other.yaml")
    assert helm_plan(app_dir) is None  # no config.yaml: the full path says so
    # The original's formats are the full path's: sbkube.yaml, or a sources.yaml beside.
    (app_dir / "other.yaml").rename(app_dir / "config.yaml")
    (app_dir / "sources.yaml").write_text("cluster: c\n")
    assert helm_plan(app_dir) is None
    (app_dir / "sources.yaml").unlink()
    (app_dir / "sbkube.yaml").write_text("apiVersion: sbkube/v1\n")
    assert helm_plan(app_dir) is None
    named = helm_plan(app_dir, "config.yaml")
    assert named is not None and named == full_plan(app_dir, config_file="config.yaml")


def _write_charts(root: Path) -> None:
    for name, version in (("alpha", "1.0.0"), ("beta", "0.2.0")):
        chart = root / "charts" / name
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(CHART.format(name=name, version=version))
    packaged = root / "charts" / "gamma.tgz"
    packaged.write_bytes(b"not a tarball")
    (root / "values").mkdir()
    (root / "values" / "a.yaml").write_text("replicas: 2\nauth:\n  password: hunter2\n")
    (root / "values" / "b.yaml").write_text("replicas: 3\nextra: {x: 1}\n")
    (root / "values" / "empty.yaml").write_text("")
    (root / "values" / "list.yaml").write_text("- 1\n- 2\n")
    (root / "values" / "bad.yaml").write_text("a: [\n")
    (root / "values" / "dup.yaml").write_text("a: 1\na: 2\n")


#: Values each field may take: valid ones (a plan must match the full path's)...
VALID: dict[str, list[Any]] = {
    "chart": ["./charts/alpha", "charts/beta", "./charts/beta"],
    "version": ["1.0.0", None],
    "values": [["values/a.yaml"], ["values/a.yaml", "values/b.yaml"], ["values/empty.yaml"], []],
    "set": [{"replicas": 5}, {"a.b.c": "d"}, {"auth.password": "s3cret"}, {}],
    "namespace": ["other", None],
    "release_name": ["rel", "rel-two", "x" * 53, None],
    "enabled": [True, False],
    "wait": [True, False],
    "depends_on": [[], ["one"], ["two"], ["three"]],
    "labels": [{"team": "a"}, {}, {"tier": ""}],
}
#: ... and invalid, of the wrong type, or beyond what the plan vouches for.
ODD: dict[str, list[Any]] = {
    "type": ["yaml", "Helm", None, 3],
    "chart": [
        "./charts/missing", "./charts", "./charts/gamma.tgz", "repo/chart", "", 7,
        "oci://example.com/c", "./charts/alpha\n", "${repos.src}/chart", ["./charts/alpha"],
    ],
    "version": ["0.2.0", "9.9.9", 1.0, 1, "", "x" * 300, True],
    "values": [
        ["values/list.yaml"], ["values/bad.yaml"], ["values/dup.yaml"], ["values/nope.yaml"],
        [""], [" "], "values/a.yaml", [3], ["values/a.yaml\x07"],
    ],
    "set": [{1: 2}, {"": 1}, {"a..b": 1}, [], "x=1", {"a.b": 1, "a": 2}],
    "namespace": ["Bad_NS", "", "x" * 64, 5],
    "release_name": ["Rel", "x" * 54, "", 12],
    "enabled": ["yes", 1],
    "wait": ["no", 0],
    "depends_on": [["nope"], ["one", "one"], "one", [1]],
    "labels": [{"team": "A b"}, {"": "x"}, {"team": 3}, {"k": "-bad"}, []],
    "timeout": ["5m"],
    "hooks": [None, {}],
    "unknown": ["x"],
}  # fmt: skip
APP_NAMES = ["one", "two", "three", "Bad", "x" * 54, "a-b", "-x"]
TOP_EXTRA: list[dict[str, Any]] = [
    {}, {}, {}, {}, {}, {}, {"cluster": "c"}, {"secret_keys": ["tok"]}, {"namespace": "Bad"},
    {"namespace": None}, {"repos": {}}, {"cluster": "c"},
    {"apps": {}}, {"apps": []}, {"environments": {"dev": {}}}, {"secret_keys": ["tok"]},
]  # fmt: skip


def _random_config(rng: random.Random) -> dict[str, Any]:
    apps: dict[str, Any] = {}
    count = rng.choice([1, 2, 3, 3])
    names = ["one", "two", "three"][:count]
    if rng.random() < 0.05:
        names[rng.randrange(count)] = rng.choice(APP_NAMES)
    for name in names:
        app: dict[str, Any] = {"type": "helm", "chart": "./charts/alpha"}
        for _ in range(rng.choice([0, 1, 2, 3])):
            pool = VALID if rng.random() < 0.8 else ODD
            field = rng.choice(list(pool))
            value = rng.choice(pool[field])
            if value is None and rng.random() < 0.5:
                app.pop(field, None)
            else:
                app[field] = value
        apps[name] = app
    config: dict[str, Any] = {"namespace": "shop", "apps": apps}
    config.update(rng.choice(TOP_EXTRA))
    return config


def test_random_configs_are_vouched_for_only_when_the_full_path_agrees(tmp_path: Path) -> None:
    _write_charts(tmp_path)
    rng = random.Random(25)
    vouched = refused = agreed_refusal = 0
    for case in range(400):
        config = _random_config(rng)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        namespace = rng.choice([None, None, None, None, "cli-ns", "Bad"])
        plan = helm_plan(tmp_path, namespace=namespace)
        expected = full_plan(tmp_path, namespace=namespace)
        if plan is not None:
            vouched += 1
            assert plan == expected, (case, config, namespace)
        elif expected is None:
            agreed_refusal += 1
        else:
            refused += 1  # the full path takes it: a doubt costs time, never a wrong result
    # Both sides really explored: plans vouched for, and bad configs left to the full path.
    assert vouched >= 60, vouched
    assert agreed_refusal >= 60, agreed_refusal
    assert refused >= 20, refused


def test_the_plan_imports_no_pydantic() -> None:
    code = (
        "import sys\nfrom sbkube.config.quick import helm_plan\n"
        "assert helm_plan(sys.argv[1]) is not None\n"
        "heavy = ('pydantic', 'sbkube.config.schema')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    app_dir = ROOT / "tests" / "fixtures" / "apps" / "quick-helm"
    out = subprocess.run(
        [sys.executable, "-c", code, str(app_dir)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
