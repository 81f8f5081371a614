"""``--set`` / ``-f`` parsing (sbkube.config.command_line): helm's syntax and typing."""

from __future__ import annotations

import pytest

from sbkube.config.command_line import CommandLineValues, parse_set, resolve, typed_value
from sbkube.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("42", 42),
        ("-7", -7),
        ("1.10", "1.10"),  # helm keeps floats as strings; so does sbkube
        ("on", "on"),
        ("{a,b}", ["a", "b"]),
        ("{}", []),
        (r"a\,b", "a,b"),
        ("", ""),
    ],
)
def test_typed_value(text, value):
    assert typed_value(text) == value


def test_parse_set_splits_pairs_but_not_escaped_commas_or_lists():
    assert parse_set(r"a.b=1,c=x\,y,d={1,2},e=u=v") == {
        "a.b": 1,
        "c": "x,y",
        "d": [1, 2],
        "e": "u=v",
    }


@pytest.mark.parametrize("bad", ["novalue", "=1", "a=1,,b=2"])
def test_parse_set_refuses_a_pair_without_key(bad):
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        parse_set(bad)


def test_resolve_orders_files_then_sets_and_every_app_before_one_app(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("x: {y: 1, z: 1}\nkeep: file\n")
    given = CommandLineValues(
        files=(str(first),), sets=("redis:x.y=3", "x.y=2,x.w=true", "redis:auth.password=p")
    )

    resolved = resolve(given, apps={"redis", "web"}, helm_apps={"redis"})

    assert list(resolved.values) == ["*", "redis"]
    assert resolved.values["*"] == {"x": {"y": 2, "z": 1, "w": True}, "keep": "file"}
    assert resolved.values["redis"] == {"x": {"y": 3}, "auth": {"password": "p"}}
    assert resolved.for_app("web") == [resolved.values["*"]]
    assert resolved.for_app("redis") == [resolved.values["*"], resolved.values["redis"]]
    assert first.resolve() in resolved.files


def test_resolve_refuses_a_yaml_app_and_a_values_file_that_is_not_a_mapping(tmp_path):
    listed = tmp_path / "l.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(ConfigError, match="'web' is not a helm app"):
        resolve(CommandLineValues(sets=("web:a=1",)), {"web"}, set())
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve(CommandLineValues(files=(str(listed),)), {"web"}, set())


def test_a_key_with_a_colon_that_is_no_app_is_a_key():
    """``APP:`` naming no app is a typo, refused (issue 22: it used to set ``typo:key`` in
    every Helm app); a key holding ":" escapes it, or does not look like an app name."""
    with pytest.raises(ConfigError, match=r"--set url:x=1: no app 'url' \(helm apps: redis"):
        resolve(CommandLineValues(sets=("url:x=1",)), {"redis"}, {"redis"})
    resolved = resolve(CommandLineValues(sets=("url\\:x=1",)), {"redis"}, {"redis"})
    assert resolved.values == {"*": {"url:x": 1}}
    resolved = resolve(CommandLineValues(sets=("a.b:c=1",)), {"redis"}, {"redis"})
    assert resolved.values == {"*": {"a": {"b:c": 1}}}
