"""The journal: every answered write is on disk before its answer, and comes back on load.

A kill is simulated by copying the files a running server has on disk (the snapshot and the
journal) at that moment, with the background save held off, and serving the copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbkube.apiserver import ApiServer, store
from sbkube.errors import ConfigError


@pytest.fixture(autouse=True)
def no_background_save(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The flusher waits this long after a change; stop() still saves at once.
    monkeypatch.setattr(store, "FLUSH_INTERVAL", 3600.0)
    yield


def killed_copy(path: Path, into: Path) -> Path:
    """The files of ``path`` as a kill -9 would leave them now, copied under ``into``."""
    into.mkdir()
    for name in (path.name, path.name + ".journal"):
        if (path.parent / name).exists():
            shutil.copy(path.parent / name, into / name)
    return into / path.name


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}


def kinds(server: ApiServer):
    registry = server.registry
    return (
        registry.for_kind("v1", "ConfigMap"),
        registry.for_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    )


def test_writes_since_the_last_save_come_back_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "live" / "cluster.json"
    with ApiServer(path) as server:
        configmaps, crds = kinds(server)
        uid = server.get("v1", "Namespace", None, "kube-system")["metadata"]["uid"]
        server.api.create(configmaps, "default", cm("kept", a="1"))
        server.api.create(configmaps, "default", cm("changed", a="1"))
        server.api.update(configmaps, "default", "changed", cm("changed", a="2"))
        server.api.create(configmaps, "default", cm("deleted"))
        server.api.delete(configmaps, "default", "deleted")
        server.api.create(crds, "", CRD)
        gadgets = server.registry.resource("example.com", "v1", "gadgets")
        assert gadgets is not None
        server.api.create(gadgets, "default", {"kind": "Gadget", "metadata": {"name": "g"}})
        assert not path.exists()  # nothing saved yet: all of it is in the journal
        copy = killed_copy(path, tmp_path / "killed")
        version = server.store.resource_version

    with ApiServer(copy) as again:
        assert again.get("v1", "ConfigMap", "default", "kept")["data"] == {"a": "1"}
        assert again.get("v1", "ConfigMap", "default", "changed")["data"] == {"a": "2"}
        assert again.get("v1", "ConfigMap", "default", "deleted") is None
        assert again.get("example.com/v1", "Gadget", "default", "g") is not None
        # The cluster's identity, and the version counter, go on where they were.
        assert again.get("v1", "Namespace", None, "kube-system")["metadata"]["uid"] == uid
        assert again.store.resource_version == version
        # Loading folded the journal into the file.
        assert not copy.with_name("cluster.json.journal").exists()
        saved = json.loads(copy.read_text())
        assert saved["resource_version"] == version


def test_a_torn_last_line_was_never_answered_and_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "live" / "cluster.json"
    with ApiServer(path) as server:
        configmaps, _ = kinds(server)
        server.api.create(configmaps, "default", cm("whole"))
        copy = killed_copy(path, tmp_path / "killed")
    journal = copy.with_name("cluster.json.journal")
    with journal.open("ab") as handle:
        handle.write(b'{"rv": 99, "type": "ADDED", "key": ["", "configm')

    with ApiServer(copy) as again:
        assert again.get("v1", "ConfigMap", "default", "whole") is not None
        configmaps, _ = kinds(again)
        again.api.create(configmaps, "default", cm("after"))
        second = killed_copy(copy, tmp_path / "killed-again")
    with ApiServer(second) as third:
        assert third.get("v1", "ConfigMap", "default", "after") is not None
        assert third.get("v1", "ConfigMap", "default", "whole") is not None


def test_a_damaged_line_inside_the_journal_is_refused_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "live" / "cluster.json"
    with ApiServer(path) as server:
        configmaps, _ = kinds(server)
        server.api.create(configmaps, "default", cm("a"))
        server.api.create(configmaps, "default", cm("b"))
        copy = killed_copy(path, tmp_path / "killed")
    journal = copy.with_name("cluster.json.journal")
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([lines[0][:-3], *lines[1:]]))
    with pytest.raises(ConfigError) as refused:
        ApiServer(copy).start()
    assert f"{journal}: line 1 is not a journal record" in str(refused.value)


def test_a_save_compacts_the_journal_and_stale_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "live" / "cluster.json"
    journal = path.with_name("cluster.json.journal")
    with ApiServer(path) as server:
        configmaps, _ = kinds(server)
        server.api.create(configmaps, "default", cm("short-lived"))
        before_save = journal.read_bytes()
        server.api.delete(configmaps, "default", "short-lived")
        server.flush()
        # The file holds it all now: the journal is gone until the next write.
        assert not journal.exists()
        server.api.create(configmaps, "default", cm("later"))
        assert [json.loads(line)["name"] for line in journal.read_bytes().splitlines()] == ["later"]
        copy = killed_copy(path, tmp_path / "killed")
    # A kill between writing the file and compacting the journal: its old lines are in the
    # file already (the delete included), so replaying them must not bring the object back.
    copy.with_name("cluster.json.journal").write_bytes(before_save)
    with ApiServer(copy) as again:
        assert again.get("v1", "ConfigMap", "default", "short-lived") is None


def test_a_clean_stop_leaves_the_file_and_no_journal(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    with ApiServer(path) as server:
        configmaps, _ = kinds(server)
        server.api.create(configmaps, "default", cm("a"))
        assert path.with_name("cluster.json.journal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json", "cluster.json.lock"]
    # A server nobody wrote to writes neither.
    empty = tmp_path / "empty"
    empty.mkdir()
    with ApiServer(empty / "cluster.json"):
        pass
    assert sorted(p.name for p in empty.iterdir()) == ["cluster.json.lock"]
