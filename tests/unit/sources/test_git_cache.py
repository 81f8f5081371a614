"""sbkube's git cache (``sbkube.sources.git``) with the real git binary: refs resolved to
commits, one immutable tree per commit, a cache lookup that writes nothing, the field at
fault in every refusal, and a deadline on every git call."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sbkube.cluster.process import calls_bounded
from sbkube.sources.git import FetchError, GitCache

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ["PATH"],
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=ENV
    )
    return done.stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository (file://): main at two commits, tag v1 at the first, branch dev."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "file.txt").write_text("one\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "one")
    git(work, "tag", "v1")
    git(work, "branch", "dev")
    (work / "file.txt").write_text("two\n")
    (work / "sub").mkdir()
    (work / "sub" / "more.txt").write_text("more\n")
    git(work, "commit", "-q", "-am", "two")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "three")
    bare = tmp_path / "upstream.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=ENV)
    return bare, git(work, "rev-parse", "v1")


def test_each_kind_of_ref_resolves_to_its_commit_and_tree(tmp_path: Path, upstream) -> None:
    bare, first = upstream
    url = bare.as_uri()
    cache = GitCache(tmp_path / "cache")
    head = cache.fetch(url, "head", None)
    main = cache.fetch(url, "branch", "main")
    assert head.commit == main.commit != first
    assert (main.tree / "file.txt").read_text() == "two\n"
    assert (main.tree / "sub" / "more.txt").is_file()
    for kind, name in (("tag", "v1"), ("branch", "dev"), ("ref", "v1"), ("commit", first[:10])):
        got = cache.fetch(url, kind, name)
        assert got.commit == first, (kind, name)
        assert (got.tree / "file.txt").read_text() == "one\n"
        assert not (got.tree / "sub").exists()
    assert main.record() == {
        "kind": "git",
        "repo": url,
        "ref": "branch main",
        "commit": main.commit,
    }
    # One bare clone for the URL, one tree per commit.
    trees = sorted(p.name for p in (cache.home(url) / "trees").iterdir())
    assert trees == sorted({first, main.commit})


def test_a_tree_is_kept_as_it_was_when_the_branch_moves(tmp_path: Path, upstream) -> None:
    bare, _first = upstream
    url = bare.as_uri()
    cache = GitCache(tmp_path / "cache")
    before = cache.fetch(url, "branch", "main")
    work = tmp_path / "work"
    (work / "file.txt").write_text("four\n")
    git(work, "commit", "-q", "-am", "four")
    git(work, "push", "-q", str(bare), "main")
    after = cache.fetch(url, "branch", "main")
    assert after.commit != before.commit
    assert (before.tree / "file.txt").read_text() == "two\n"
    assert (after.tree / "file.txt").read_text() == "four\n"


def test_cached_answers_from_the_cache_and_writes_nothing(tmp_path: Path, upstream) -> None:
    bare, _first = upstream
    url = bare.as_uri()
    root = tmp_path / "cache"
    cache = GitCache(root)
    assert cache.cached(url, "branch", "main") is None
    assert not root.exists()
    fetched = cache.fetch(url, "branch", "main")
    found = cache.cached(url, "branch", "main")
    assert found is not None and found.commit == fetched.commit and found.tree == fetched.tree
    # A commit whose tree was never checked out: the cache cannot answer, writes nothing.
    assert cache.cached(url, "tag", "v1") is None
    assert sorted(p.name for p in (cache.home(url) / "trees").iterdir()) == [fetched.commit]


@pytest.mark.parametrize(
    ("kind", "name", "field"),
    [("branch", "nope", "branch"), ("tag", "v9", "tag"), ("commit", "0123456789ab", "commit")],
)
def test_an_unknown_ref_names_its_field_exit_2(tmp_path, upstream, kind, name, field) -> None:
    bare, _first = upstream
    with pytest.raises(FetchError) as err:
        GitCache(tmp_path / "cache").fetch(bare.as_uri(), kind, name)
    assert err.value.field == field and err.value.exit_code == 2
    assert f"has no {kind} {name!r}" in err.value.message


def test_a_url_git_cannot_read_names_the_repo_exit_1(tmp_path: Path) -> None:
    url = (tmp_path / "missing.git").as_uri()
    with pytest.raises(FetchError) as err:
        GitCache(tmp_path / "cache").fetch(url, "branch", "main")
    assert err.value.field == "repo" and err.value.exit_code == 1
    assert "git clone" in err.value.message and "missing.git" in err.value.message
    # Nothing half-cloned is left to be taken for a clone later.
    assert not (GitCache(tmp_path / "cache").home(url) / "repo.git").exists()


def test_a_git_that_never_answers_is_stopped_at_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung = tmp_path / "git"
    hung.write_text("#!/bin/sh\nexec sleep 600\n")
    hung.chmod(hung.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("SBKUBE_GIT", str(hung))
    with calls_bounded(0.2), pytest.raises(FetchError) as err:
        GitCache(tmp_path / "cache").fetch("https://git.example.com/r.git", "branch", "main")
    assert err.value.field == "repo"
    assert "no answer within 0.2s" in err.value.message
