"""Git checkouts in a cache sbkube owns, with the real ``git`` binary.

Shape: ``GitCache(root)`` keeps, per repository URL (keyed by its sha256), a bare clone
``root/git/<key>/repo.git`` and one directory per commit checked out,
``root/git/<key>/trees/<sha>/`` (the tree as ``git archive`` gives it, extracted with
tarfile's ``data`` filter: no path leaves the directory). A tree is written once, under a
temporary name then renamed, and never changed: a chart recorded from it is still there,
byte for byte, when a rollback needs it. A file lock per repository serializes the
fetches of concurrent sbkube runs.

* :meth:`GitCache.fetch`: clone (first time) or fetch the branches and tags, resolve the
  wanted ref to a commit, check that commit out; ``FetchError`` (naming the field at
  fault: ``repo`` for a URL git cannot read, the ref's field for a ref it does not have).
* :meth:`GitCache.cached`: the same answer from what the cache holds, touching nothing
  (a dry run); None when the cache cannot answer.

Every git call goes through :class:`GitClient` (``sbkube.cluster.process.BinaryClient``):
a deadline (the calling thread's bound), stopped with the run, git's own error line in
the message; never a prompt for a password (``GIT_TERMINAL_PROMPT=0``, ssh in batch mode).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sbkube.cluster.process import BinaryClient
from sbkube.errors import SbkubeError
from sbkube.redaction import mask_url

__all__ = ["Checkout", "FetchError", "GitCache", "GitClient"]

_HEX = re.compile(r"[0-9a-f]{7,64}")


class FetchError(SbkubeError):
    """A source that could not be fetched; ``field``: the app's field at fault."""

    def __init__(self, message: str, *, field: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code=exit_code)
        self.field = field


class GitClient(BinaryClient):
    NAME: ClassVar[str] = "git"
    ENV_VAR: ClassVar[str] = "SBKUBE_GIT"

    def environment(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        if "GIT_SSH_COMMAND" not in os.environ:
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
        return env


@dataclass(frozen=True, slots=True)
class Checkout:
    """One repository at one commit: where its files are, and what is recorded."""

    url: str
    kind: str
    """What was asked for: ``branch``, ``tag``, ``ref``, ``commit``, or ``head``."""
    name: str | None
    commit: str
    tree: Path

    @property
    def wanted(self) -> str:
        return "HEAD" if self.name is None else f"{self.kind} {self.name}"

    def record(self) -> dict[str, Any]:
        return {
            "kind": "git",
            "repo": mask_url(self.url),
            "ref": self.wanted,
            "commit": self.commit,
        }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _candidates(kind: str, name: str | None) -> list[str]:
    if kind == "head" or name is None:
        return ["HEAD"]
    if kind == "branch":
        return [f"refs/heads/{name}"]
    if kind == "tag":
        return [f"refs/tags/{name}"]
    if kind == "commit":
        return [name]
    found = [name] if name.startswith("refs/") else []
    found += [f"refs/heads/{name}", f"refs/tags/{name}"]
    return found + ([name] if _HEX.fullmatch(name) else [])


class GitCache:
    """The checkouts under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, client: GitClient | None = None) -> None:
        self.root = root
        self.client = client or GitClient()

    def home(self, url: str) -> Path:
        """The cache directory of the repository at ``url``."""
        return self.root / "git" / hashlib.sha256(url.encode()).hexdigest()[:24]

    def _git(self, *args: str, what: str) -> str:
        return self.client.run([self.client.binary, *args], what=what)

    def fetch(self, url: str, kind: str, name: str | None) -> Checkout:
        home = self.home(url)
        home.mkdir(parents=True, exist_ok=True)
        shown = mask_url(url)
        mirror = home / "repo.git"
        with _locked(home / "lock"):
            try:
                if not (mirror / "HEAD").is_file():
                    self._clone(url, home, mirror, shown)
                else:
                    self._git(
                        "--git-dir", str(mirror), "fetch", "--quiet", "--prune", "--force",
                        "--no-write-fetch-head", "--", url,
                        "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                        what=f"git fetch {shown}",
                    )  # fmt: skip
                    if kind == "head":
                        self._follow_head(url, mirror, shown)
            except SbkubeError as err:
                raise FetchError(err.message, field="repo") from err
            commit = self._resolve(mirror, kind, name)
            if commit is None and name is not None and _HEX.fullmatch(name):
                # A commit no branch or tag reaches: servers that allow it send it.
                with contextlib.suppress(SbkubeError):
                    self._git(
                        "--git-dir", str(mirror), "fetch", "--quiet", "--no-write-fetch-head",
                        "--", url, name, what=f"git fetch {shown} {name}",
                    )  # fmt: skip
                    commit = self._resolve(mirror, kind, name)
            if commit is None:
                what = "HEAD" if name is None else f"{kind} {name!r}"
                raise FetchError(
                    f"{shown} has no {what}", field="repo" if name is None else kind, exit_code=2
                )
            tree = self._materialize(home, mirror, commit)
        return Checkout(url, kind, name, commit, tree)

    def cached(self, url: str, kind: str, name: str | None) -> Checkout | None:
        """The checkout the cache holds for the ref as last fetched; None when it holds
        none (nothing is written: a dry run)."""
        home = self.home(url)
        mirror = home / "repo.git"
        if not (mirror / "HEAD").is_file():
            return None
        commit = self._resolve(mirror, kind, name)
        if commit is None or not (home / "trees" / commit).is_dir():
            return None
        return Checkout(url, kind, name, commit, home / "trees" / commit)

    def _clone(self, url: str, home: Path, mirror: Path, shown: str) -> None:
        partial = home / f".clone-{uuid.uuid4().hex}"
        try:
            self._git(
                "clone", "--bare", "--quiet", "--", url, str(partial), what=f"git clone {shown}"
            )
            partial.rename(mirror)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)

    def _follow_head(self, url: str, mirror: Path, shown: str) -> None:
        """Point the bare clone's HEAD where the remote's points now."""
        out = self._git("ls-remote", "--symref", "--", url, "HEAD", what=f"git ls-remote {shown}")
        for line in out.splitlines():
            if line.startswith("ref: ") and line.endswith("\tHEAD"):
                ref = line[len("ref: ") : -len("\tHEAD")]
                self._git("--git-dir", str(mirror), "symbolic-ref", "HEAD", ref, what="git")

    def _resolve(self, mirror: Path, kind: str, name: str | None) -> str | None:
        for candidate in _candidates(kind, name):
            proc = self.client.execute(
                [
                    self.client.binary,
                    "--git-dir",
                    str(mirror),
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    f"{candidate}^{{commit}}",
                ],
                what="git rev-parse",
            )
            sha = proc.stdout.strip()
            if proc.returncode == 0 and _HEX.fullmatch(sha):
                return sha
        return None

    def _materialize(self, home: Path, mirror: Path, commit: str) -> Path:
        trees = home / "trees"
        tree = trees / commit
        if tree.is_dir():
            return tree
        trees.mkdir(exist_ok=True)
        token = uuid.uuid4().hex
        partial = trees / f".partial-{token}"
        archive = home / f".archive-{token}.tar"
        try:
            self._git(
                "--git-dir", str(mirror), "archive", "--format=tar", "-o", str(archive), commit,
                what=f"git archive {commit}",
            )  # fmt: skip
            partial.mkdir()
            with tarfile.open(archive) as tar:
                tar.extractall(partial, filter="data")
            try:
                partial.rename(tree)
            except OSError:
                if not tree.is_dir():
                    raise
        finally:
            archive.unlink(missing_ok=True)
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
        return tree
